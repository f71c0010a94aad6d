"""Checkpoint signing keys: made once, kept in a file outside the database, never in the store.

The key file holds Go's ``note`` signer key string (``PRIVATE+KEY+<origin>+<id>+<key>``); a ``.pub``
file beside it holds the verifier key string that auditors and ``inferlog verify`` use. The key's name
is the log's *origin* line in every checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

from inferlog.config import DEFAULT_SIGNER_KEY_FILE, ENV_SIGNER_KEY_FILE, ENV_VERIFIER_KEY
from inferlog.errors import NoteError, UsageError
from inferlog.integrity.files import write_atomic
from inferlog.ledger.checkpoint import NoteSigner, NoteVerifier

DEFAULT_ORIGIN = "inferlog.local/log"


def signer_key_path(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get(ENV_SIGNER_KEY_FILE) or DEFAULT_SIGNER_KEY_FILE)


def public_key_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name.removesuffix(".key") + ".pub")


def init_signer(path: str | os.PathLike[str] | None = None, origin: str = DEFAULT_ORIGIN) -> NoteSigner:
    """Make a new Ed25519 signing key for ``origin``; refuses to overwrite an existing key."""
    key_path = signer_key_path(path)
    if key_path.exists():
        raise UsageError(f"{key_path} already exists; a log keeps its signing key (rotate by a new origin)")
    try:
        signer = NoteSigner.generate(origin)
    except NoteError as exc:
        raise UsageError(f"origin {origin!r} cannot name a key: {exc}") from exc
    key_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(key_path, (signer.to_key_string() + "\n").encode(), mode=0o600)
    write_atomic(public_key_path(key_path), (signer.verifier_key_string() + "\n").encode())
    return signer


def load_signer(path: str | os.PathLike[str] | None = None) -> NoteSigner:
    """The signing key from ``path``, ``$INFERLOG_SIGNER_KEY_FILE`` or ./inferlog-signer.key."""
    key_path = signer_key_path(path)
    try:
        text = key_path.read_text().strip()
    except FileNotFoundError:
        raise UsageError(f"no signing key at {key_path}: make one with `inferlog keys init-signer`") from None
    try:
        return NoteSigner.from_key_string(text)
    except NoteError as exc:
        raise UsageError(f"{key_path} does not hold a signer key: {exc}") from exc


def load_verifiers(keys: list[str] | None = None) -> list[NoteVerifier]:
    """Verifier keys from strings or files; default ``$INFERLOG_VERIFIER_KEY`` or the signer's .pub."""
    sources = list(keys or [])
    if not sources and os.environ.get(ENV_VERIFIER_KEY):
        sources.append(os.environ[ENV_VERIFIER_KEY])
    if not sources:
        default = public_key_path(signer_key_path())
        if default.exists():
            sources.append(str(default))
    verifiers = []
    for source in sources:
        text = source
        if "+" not in source or Path(source).exists():
            try:
                text = Path(source).read_text().strip()
            except OSError as exc:
                raise UsageError(f"cannot read verifier key {source}: {exc}") from exc
        try:
            verifiers.append(NoteVerifier.from_key_string(text))
        except NoteError as exc:
            raise UsageError(f"not a verifier key ({source}): {exc}") from exc
    return verifiers
