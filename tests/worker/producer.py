"""A producer process for the broker tests: records into a nats:// log, writing each id once record() returns.

    python -m tests.worker.producer NATS_URL SPOOL_DIR IDS_FILE COUNT PAUSE_SECONDS

An id in IDS_FILE is an acknowledged record: record() returned, so the log promised to keep it.
Exits 0 when close() delivered everything to the stream, 3 if something was left in the spool.
"""

from __future__ import annotations

import sys
import time

import inferlog


def main(argv: list[str]) -> int:
    url, spool, ids_file, count, pause = argv[0], argv[1], argv[2], int(argv[3]), float(argv[4])
    log = inferlog.open(url, system="chaos", spool_dir=spool)
    model = inferlog.Model("chaos-model", "1")
    with open(ids_file, "a", buffering=1) as out:
        for i in range(count):
            out.write(log.record(model=model, input={"i": i}, output=i % 7, latency_ms=1.0) + "\n")
            if pause and i % 10 == 9:
                time.sleep(pause * 10)
    return 0 if log.close(timeout=120) else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
