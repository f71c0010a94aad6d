"""The pack's container: a folder, or a zip written the one way this module writes it.

Why our own zip writer: a zip is the container every system opens, but the format leaves room
(timestamps, attributes, extra fields, comments, bytes between members) where a byte could change
without changing any file in it. Written here, every member is stored uncompressed, dated
1980-01-01 00:00, mode 0644, sorted by name, with no extra field and no comment, nothing between the
members or after the end record. The reader refuses any other byte, so a change anywhere in the zip
is found, not only a change to the files it holds. (Stored, not deflated: deflate's output depends on
the zlib build, and the verifier must be able to say what every byte should be.)
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from inferlog.errors import ContainerError, UsageError
from inferlog.evidence.layout import valid_name

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_LOCAL_SIG, _CENTRAL_SIG, _END_SIG = 0x04034B50, 0x02014B50, 0x06054B50
_NEED = 20  # version needed to extract: 2.0
_MADE = (3 << 8) | 20  # made by: Unix, 2.0
_DOS_TIME, _DOS_DATE = 0, (0 << 9) | (1 << 5) | 1  # 1980-01-01 00:00:00
_EXTERNAL = 0o100644 << 16  # a regular file, rw-r--r--
_MAX = 0xFFFFFFFF - 1  # no zip64: a larger pack is written as a folder
_CHUNK = 1 << 20


@dataclass
class Pack:
    """An opened pack: its files' names and SHA-256 digests, and where to read each one."""

    path: Path
    digests: dict[str, str] = field(default_factory=dict)  # name -> sha256 hex
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, what) found while opening
    _spans: dict[str, tuple[int, int]] = field(default_factory=dict)  # zip: name -> (offset, size)

    @property
    def is_zip(self) -> bool:
        return self.path.is_file()

    def names(self) -> list[str]:
        return sorted(self.digests)

    def open(self, name: str) -> BinaryIO:
        """The file's bytes as a stream (a zip member is read in place)."""
        if name not in self.digests:
            raise KeyError(name)
        if not self.is_zip:
            return (self.path / name).open("rb")
        offset, size = self._spans[name]
        if size <= _CHUNK * 16:
            with self.path.open("rb") as whole:
                whole.seek(offset)
                return io.BytesIO(whole.read(size))
        return io.BufferedReader(_Slice(self.path, offset, size), _CHUNK)

    def read(self, name: str) -> bytes:
        with self.open(name) as stream:
            return stream.read()


class _Slice(io.RawIOBase):
    """A read-only, seekable view of ``size`` bytes at ``offset`` of a file (a large zip member)."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        super().__init__()
        self._file = path.open("rb")
        self._offset = offset
        self._size = size
        self._at = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = max(0, min(len(buffer), self._size - self._at))
        self._file.seek(self._offset + self._at)
        data = self._file.read(want)
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


def _chunks(stream: BinaryIO, size: int | None = None) -> Iterator[bytes]:
    left = size
    while left is None or left > 0:
        data = stream.read(_CHUNK if left is None else min(_CHUNK, left))
        if not data:
            return
        if left is not None:
            left -= len(data)
        yield data


# -- writing ----------------------------------------------------------------------------------------


def write_zip(folder: Path, names: Sequence[str], out: Path) -> None:
    """Write the files ``names`` of ``folder`` into the zip ``out``, laid out as described above."""
    central = bytearray()
    ordered = sorted(names)
    if len(ordered) >= 0xFFFF:
        raise UsageError("too many files for one zip: write the pack as a folder")
    with out.open("wb") as zipped:
        for name in ordered:
            path = folder / name
            size = path.stat().st_size
            if size > _MAX:
                raise UsageError(f"{name} is over 4 GiB, too big for a zip: write the pack as a folder")
            crc = 0
            with path.open("rb") as stream:
                for chunk in _chunks(stream):
                    crc = zlib.crc32(chunk, crc)
            encoded = name.encode("ascii")
            offset = zipped.tell()
            zipped.write(
                _LOCAL.pack(_LOCAL_SIG, _NEED, 0, 0, _DOS_TIME, _DOS_DATE, crc, size, size, len(encoded), 0)
                + encoded
            )
            with path.open("rb") as stream:
                for chunk in _chunks(stream):
                    zipped.write(chunk)
            central += _CENTRAL.pack(
                _CENTRAL_SIG, _MADE, _NEED, 0, 0, _DOS_TIME, _DOS_DATE, crc, size, size, len(encoded),
                0, 0, 0, 0, _EXTERNAL, offset,
            ) + encoded  # fmt: skip
            if zipped.tell() > _MAX:
                raise UsageError("the pack is over 4 GiB, too big for a zip: write it as a folder")
        start = zipped.tell()
        zipped.write(central)
        zipped.write(_END.pack(_END_SIG, 0, 0, len(ordered), len(ordered), len(central), start, 0))
        zipped.flush()
        os.fsync(zipped.fileno())


# -- reading ----------------------------------------------------------------------------------------


def open_pack(path: Path) -> Pack:
    """Open a pack (zip or folder), hashing every file; raises ContainerError for a malformed zip."""
    if path.is_dir():
        return _open_folder(path)
    if not path.is_file():
        raise UsageError(f"no pack at {path}")
    return _open_zip(path)


def _open_folder(path: Path) -> Pack:
    pack = Pack(path)
    for file in sorted(path.rglob("*")):
        name = file.relative_to(path).as_posix()
        if file.is_symlink() or (not file.is_file() and not file.is_dir()):
            pack.problems.append((name, "is not a regular file"))
        elif file.is_file():
            if not valid_name(name):
                pack.problems.append((name, "is not a file an evidence pack holds"))
                continue
            digest = hashlib.sha256()
            with file.open("rb") as stream:
                for chunk in _chunks(stream):
                    digest.update(chunk)
            pack.digests[name] = digest.hexdigest()
    return pack


def _open_zip(path: Path) -> Pack:
    pack = Pack(path)
    total = path.stat().st_size
    members: list[tuple[str, int, int, int]] = []  # name, header offset, size, crc
    with path.open("rb") as stream:
        reader = _Reader(stream, path.name)
        while reader.peek_signature() == _LOCAL_SIG:
            offset = reader.position
            _sig, need, flags, method, time, date, crc, csize, size, nlen, xlen = reader.unpack(_LOCAL)
            reader.expect("local header", offset, (need, flags, method, time, date, xlen),
                          (_NEED, 0, 0, _DOS_TIME, _DOS_DATE, 0))  # fmt: skip
            if csize != size:
                raise reader.error(offset, "a member's compressed and plain sizes differ")
            name = reader.name(nlen, offset)
            if members and name <= members[-1][0]:
                raise reader.error(offset, f"member {name} is out of order or repeated")
            start = reader.position
            digest, actual = hashlib.sha256(), 0
            for chunk in _chunks(stream, size):
                digest.update(chunk)
                actual = zlib.crc32(chunk, actual)
            if stream.tell() != start + size:
                raise reader.error(offset, f"member {name} is cut short")
            reader.position = start + size
            if actual != crc:
                pack.problems.append((name, "its CRC-32 in the zip does not match its content (changed)"))
            pack.digests[name] = digest.hexdigest()
            pack._spans[name] = (start, size)
            members.append((name, offset, size, crc))
        directory = reader.position
        for name, offset, size, crc in members:
            here = reader.position
            if reader.peek_signature() != _CENTRAL_SIG:
                raise reader.error(here, "the central directory is missing an entry")
            fields = reader.unpack(_CENTRAL)
            reader.expect(f"central directory entry of {name}", here, fields[1:],
                          (_MADE, _NEED, 0, 0, _DOS_TIME, _DOS_DATE, crc, size, size, len(name), 0, 0, 0, 0,
                           _EXTERNAL, offset))  # fmt: skip
            if reader.name(fields[10], here) != name:
                raise reader.error(here, f"the central directory names another file than {name}")
        here = reader.position
        if reader.peek_signature() != _END_SIG:
            raise reader.error(here, "no end record where the central directory ends")
        count = len(members)
        reader.expect("end record", here, reader.unpack(_END)[1:],
                      (0, 0, count, count, here - directory, directory, 0))  # fmt: skip
        if reader.position != total:
            raise reader.error(reader.position, "bytes follow the end record")
    return pack


class _Reader:
    def __init__(self, stream: BinaryIO, label: str) -> None:
        self.stream = stream
        self.label = label
        self.position = 0

    def error(self, offset: int, what: str) -> ContainerError:
        return ContainerError(
            f"{self.label}: at byte {offset}: {what}; this is not a zip as inferlog writes a pack "
            "(bytes outside the files were changed)"
        )

    def peek_signature(self) -> int | None:
        self.stream.seek(self.position)
        data = self.stream.read(4)
        return int.from_bytes(data, "little") if len(data) == 4 else None

    def unpack(self, layout: struct.Struct) -> tuple[int, ...]:
        self.stream.seek(self.position)
        data = self.stream.read(layout.size)
        if len(data) != layout.size:
            raise self.error(self.position, "the zip ends inside a header")
        self.position += layout.size
        return layout.unpack(data)

    def name(self, length: int, offset: int) -> str:
        raw = self.stream.read(length)
        self.position += len(raw)
        try:
            name = raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.error(offset, "a member's name is not ASCII") from None
        if len(raw) != length or not valid_name(name):
            raise self.error(offset, f"{name!r} is not a file an evidence pack holds")
        return name

    def expect(self, what: str, offset: int, found: Sequence[int], wanted: Sequence[int]) -> None:
        if tuple(found) != tuple(wanted):
            raise self.error(offset, f"the {what} has fields {tuple(found)}, expected {tuple(wanted)}")
