"""What an evidence pack holds, by file name, and the text of its signed manifest.

One place names every file, so the builder, the verifier and the docs agree. The manifest is a
C2SP signed note (the format of the log's checkpoints, signed by the same key) whose text is a
header line and then one ``sha256sum`` line per file::

    inferlog evidence pack v1
    <sha256 hex>  checkpoint.note
    <sha256 hex>  entries.jsonl
    ...

so Go's ``note.Open`` checks its signature and ``sha256sum -c`` checks the files. The second line is
never a decimal number, so no checkpoint parser can take a manifest for a tree head.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

FORMAT = "inferlog-evidence-pack/1"
MANIFEST_HEADER = "inferlog evidence pack v1"

MANIFEST = "manifest.note"
PACK_INFO = "pack.json"
CHECKPOINT = "checkpoint.note"
CHECKPOINTS_DIR = "checkpoints"
VERIFIER_KEY = "verifier.key"
ENTRIES_JSONL = "entries.jsonl"
ENTRIES_PARQUET = "entries.parquet"
INCLUSION = "proofs/inclusion.jsonl"
CONSISTENCY = "proofs/consistency.jsonl"
MODELS = "models.json"
POLICY = "policy.json"
SUMMARY = "summary.json"
REPORT = "report.html"
VERIFIER_SCRIPT = "verify_pack.py"
README = "README.txt"

# The columns of entries.jsonl (keys, in this order) and of entries.parquet.
COLUMNS = ("seq", "id", "kind", "system", "ts", "leaf", "leaf_hash", "salt", "body")
NULLABLE = frozenset({"salt", "body"})  # null once the payload was purged or erased

_NAME = re.compile(r"[A-Za-z0-9_]+(?:[./-][A-Za-z0-9_]+)*")


def earlier_checkpoint(size: int) -> str:
    """The file name of an earlier checkpoint of ``size`` leaves (zero-padded, so names sort by size)."""
    return f"{CHECKPOINTS_DIR}/{size:020d}.note"


def valid_name(name: str) -> bool:
    """File names a pack may hold: ASCII words joined by ``.``, ``/``, ``-`` (no ``..``)."""
    return _NAME.fullmatch(name) is not None and ".." not in name


def manifest_text(digests: Mapping[str, str]) -> bytes:
    """The manifest note's text: the header, then ``<hex>  <name>`` for each file, sorted by name."""
    lines = [MANIFEST_HEADER, *(f"{digests[name]}  {name}" for name in sorted(digests))]
    return ("\n".join(lines) + "\n").encode("ascii")


def parse_manifest_text(text: bytes) -> dict[str, str]:
    """File name -> SHA-256 hex from a manifest's (verified) text; ValueError if it is not one."""
    lines = text.decode("ascii").split("\n")
    if lines[0] != MANIFEST_HEADER or lines[-1] != "":
        raise ValueError(f"the manifest does not start with {MANIFEST_HEADER!r}")
    digests: dict[str, str] = {}
    for line in lines[1:-1]:
        digest, sep, name = line.partition("  ")
        if not sep or not re.fullmatch(r"[0-9a-f]{64}", digest) or not valid_name(name):
            raise ValueError(f"malformed manifest line {line!r}")
        if name in digests:
            raise ValueError(f"the manifest lists {name} twice")
        digests[name] = digest
    return digests
