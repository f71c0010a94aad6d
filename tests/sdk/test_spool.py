"""The spool: frames, checksums, torn tails, adoption of dead processes' spools, replay."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import inferlog
from inferlog.sdk.spool import DATA_START, FRAME, Cursor, SpoolWriter, adopt_orphans, read_frames


def _writer(root: Path, **kw: int) -> SpoolWriter:
    return SpoolWriter(
        root, segment_bytes=kw.get("segment_bytes", 64 * 1024), max_bytes=1 << 20, block_timeout=0.1
    )


def _read_all(spool: SpoolWriter, batch_size: int) -> tuple[list[bytes], Cursor]:
    """Every payload in the spool from its start, read ``batch_size`` at a time, and the cursor after them."""
    got: list[bytes] = []
    cursor = Cursor(1, DATA_START)
    while True:
        batch, after = spool.read(cursor, batch_size)
        if not batch and after == cursor:
            return got, cursor
        got += batch
        cursor = after


def test_frames_read_back_in_order_across_segments(tmp_path: Path) -> None:
    """Payloads appended across several segment rotations read back complete and in order."""
    spool = _writer(tmp_path)
    payloads = [os.urandom(100 + i % 900) for i in range(300)]
    for p in payloads:
        spool.append(p)
    got, cursor = _read_all(spool, 50)
    assert got == payloads
    assert cursor.segment >= 2  # it really rotated
    spool.close(delivered=True)
    assert not spool.directory.exists()


def test_read_frames_stops_at_bad_checksum() -> None:
    """A frame whose CRC does not match ends the readable data (nothing after it is trusted)."""
    good = b"good"
    frames = FRAME.pack(len(good), zlib.crc32(good)) + good
    frames += FRAME.pack(3, 12345) + b"bad"
    frames += FRAME.pack(len(good), zlib.crc32(good)) + good
    payloads, offset, ended = read_frames(frames, 0, len(frames), 100)
    assert payloads == [good]
    assert offset == FRAME.size + len(good)
    assert ended


def test_live_spools_are_not_adopted(tmp_path: Path) -> None:
    """A writer directory whose owner still holds its lock is left alone."""
    spool = _writer(tmp_path)
    spool.append(b"x")
    assert adopt_orphans(tmp_path) == []
    spool.close(delivered=False)
    orphans = adopt_orphans(tmp_path)
    assert [o.directory for o in orphans] == [spool.directory]
    orphans[0].release()


def test_orphan_replay_cuts_torn_tail_and_resumes_from_cursor(tmp_path: Path) -> None:
    """A dead writer's torn last frame is cut and counted; acknowledged batches are not re-read."""
    spool = _writer(tmp_path)
    for i in range(10):
        spool.append(f"record-{i}".encode())
    end = spool.head[1]
    spool.close(delivered=False)
    segment = next(spool.directory.glob("*.seg"))
    with open(segment, "r+b") as fh:  # a crash in the middle of writing an 11th frame
        fh.seek(end)
        fh.write(struct.pack("<II", 500, 0) + b"partial")
    (orphan,) = adopt_orphans(tmp_path)
    batches = list(orphan.batches(4))
    assert [p for b, _ in batches for p in b] == [f"record-{i}".encode() for i in range(10)]
    assert orphan.torn == 1
    orphan.ack(batches[1][1])  # 8 delivered, then the process dies again
    orphan.release()
    (again,) = adopt_orphans(tmp_path)
    assert [p for b, _ in again.batches(100) for p in b] == [b"record-8", b"record-9"]
    again.finish()
    assert not spool.directory.exists()


def test_next_open_replays_a_dead_writers_records(tmp_path: Path) -> None:
    """Records spooled by a Log that never shipped them are delivered by the next Log to open."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    model = inferlog.Model("m", "1")
    spool = _writer(tmp_path / "spool")
    import msgspec

    from inferlog.testing import make_record

    records = [make_record(system="s") for _ in range(5)]
    for record in records:
        spool.append(msgspec.msgpack.encode(record))
    spool.close(delivered=False)  # as if the process died before shipping
    log = inferlog.open(url, system="s", spool_dir=tmp_path / "spool")
    assert log.flush(timeout=10)
    assert [e.id for e in log.query()] == [r.id for r in records]
    assert log.counters.replayed == 5
    log.record(model=model)
    log.close()
    assert list((tmp_path / "spool").glob("w-*")) == []


def test_spool_is_preallocated(tmp_path: Path) -> None:
    """Segments get their blocks at creation, so a full disk fails there and not as SIGBUS later."""
    spool = _writer(tmp_path, segment_bytes=256 * 1024)
    segment = next(spool.directory.glob("*.seg"))
    assert segment.stat().st_blocks * 512 >= 256 * 1024
    spool.close(delivered=True)


def test_spare_segments_race_with_rotation_safely(tmp_path: Path) -> None:
    """Pre-creating the next segment while the writer rotates into it never breaks the spool or loses a frame."""
    import threading

    spool = SpoolWriter(tmp_path, segment_bytes=64 * 1024, max_bytes=1 << 30, block_timeout=1)
    stop = threading.Event()

    def spares() -> None:
        while not stop.is_set():
            spool.prepare_spare()

    helper = threading.Thread(target=spares)
    helper.start()
    payloads = [os.urandom(700) for _ in range(3000)]  # about 32 segments
    try:
        for p in payloads:
            spool.append(p)
    finally:
        stop.set()
        helper.join()
    got, _ = _read_all(spool, 500)
    assert got == payloads
    assert not list(spool.directory.glob(".spare-*"))  # renamed into place or removed
    spool.close(delivered=True)


def test_has_room_until_one_segment_is_left_then_not_after_close(tmp_path: Path) -> None:
    """``has_room`` holds while an append could rotate without waiting for the shipper, not once the
    spool is down to its last free segment, and never after close."""
    spool = SpoolWriter(tmp_path, segment_bytes=64 * 1024, max_bytes=4 * 64 * 1024, block_timeout=0.1)
    assert spool.has_room()
    payload = os.urandom(1000)
    while spool.has_room():
        spool.append(payload)
    assert len(spool._segments) == spool.max_segments - 1
    spool.append(payload)  # still no wait: the last segment is free
    spool.close(delivered=False)
    assert not spool.has_room()


def test_records_without_waiting_only_when_nothing_in_record_can_wait(tmp_path: Path) -> None:
    """A Log at durability process says record() cannot wait; one at durability machine (the group
    commit) says it can."""
    with inferlog.open(f"sqlite:///{tmp_path / 'p.db'}", system="s") as log:
        assert log.records_without_waiting()
    with inferlog.open(f"sqlite:///{tmp_path / 'm.db'}", system="s", durability="machine") as log:
        assert not log.records_without_waiting()
