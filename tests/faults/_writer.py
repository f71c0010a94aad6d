"""A producer process for the kill tests: records as fast as it can and acknowledges each id.

An id is printed (and flushed to the parent) only after ``record()`` returned, so every printed id
is one the SDK promised was durable. Run: python _writer.py URL SPOOL_DIR THREADS DURABILITY
"""

from __future__ import annotations

import sys
import threading
from typing import cast

import inferlog
from inferlog.sdk.client import Durability


def main() -> None:
    url, spool_dir, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    durability = cast(Durability, sys.argv[4])  # inferlog.open refuses any other value
    log = inferlog.open(url, system="kill-test", spool_dir=spool_dir, durability=durability, fail_closed=True)
    model = inferlog.Model("kill-test-model", "1")
    out_lock = threading.Lock()

    def produce(worker: int) -> None:
        n = 0
        while True:
            rid = log.record(model=model, input={"worker": worker, "n": n, "pad": "x" * 200}, output=n)
            with out_lock:
                sys.stdout.write(rid + "\n")
                sys.stdout.flush()
            n += 1

    for worker in range(threads):
        threading.Thread(target=produce, args=(worker,), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
