"""Off-box copies of checkpoints: a folder (another disk, a mounted WORM bucket) or an HTTP webhook.

A checkpoint kept only in the database proves nothing against whoever controls the database; copies
elsewhere make a rollback or a rewritten history provable.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Protocol

from inferlog.errors import UsageError
from inferlog.integrity.files import write_atomic


class Publisher(Protocol):
    def publish(self, size: int, note: bytes) -> None: ...


class DirectoryPublisher:
    """Writes ``<size>.note`` and ``latest`` into a folder, each atomically.

    The folder must exist: it is usually another disk or a mounted WORM share, and one that is not
    mounted must not silently become a local folder on the database host. A missing folder is
    refused when the publisher is made and named (never a temporary file) if it vanishes later.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._require_folder()

    def _require_folder(self) -> None:
        if not self.directory.is_dir():
            raise UsageError(
                f"no checkpoint folder {self.directory}: create it (or mount it) first; "
                "inferlog does not create it, so an unmounted share is noticed"
            )

    def publish(self, size: int, note: bytes) -> None:
        self._require_folder()
        write_atomic(self.directory / f"{size:012d}.note", note)
        write_atomic(self.directory / "latest", note)

    def notes(self) -> list[bytes]:
        """Every checkpoint published here, smallest size first."""
        return [p.read_bytes() for p in sorted(self.directory.glob("*.note"))]


class WebhookPublisher:
    """POSTs each signed note (``text/plain; charset=utf-8``) to a URL; a non-2xx answer is an error."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"checkpoint webhook must be an http(s) URL, got {url!r}")
        self.url = url
        self.timeout = timeout

    def publish(self, size: int, note: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in __init__  # noqa: S310 - scheme checked above
            self.url,
            data=note,
            method="POST",
            headers={"Content-Type": "text/plain; charset=utf-8", "X-Inferlog-Tree-Size": str(size)},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310  # noqa: S310
            if not 200 <= response.status < 300:
                raise OSError(f"checkpoint webhook {self.url} answered {response.status}")
