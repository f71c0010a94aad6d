"""Signed tree heads: C2SP tlog-checkpoint bodies inside C2SP signed notes (Ed25519).

The byte format is the one Go's sumdb, Sigstore Rekor v2 and the witness
network use, so any of their verifiers can check our checkpoints and we can
reuse their keys. Everything here is exact bytes: a signature over a string
that differs by one newline "verifies nowhere", so rendering and parsing are
strict and reject anything they would not produce themselves.

A signed note is::

    <text, ending in "\\n">
    <blank line>
    — <key name> <base64(4-byte key ID || 64-byte Ed25519 signature)>\\n   (one or more)

and a checkpoint's text is ``origin\\nsize\\nbase64(root)\\n``, optionally followed by extension lines.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from inferlog.errors import CheckpointError, NoteError
from inferlog.ledger.hashing import HASH_SIZE

__all__ = [
    "Checkpoint",
    "NoteSigner",
    "NoteVerifier",
    "key_id",
    "open_checkpoint",
    "open_note",
    "sign_checkpoint",
]

_ALG_ED25519 = b"\x01"
_SIG_PREFIX = "\u2014 "  # EM DASH + space, never "-"
_MAX_SIGNATURES = 100  # Go's limit; C2SP requires accepting at least 16
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_MAX_SIZE = (1 << 64) - 1

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # ASCII controls other than "\n"
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")


# ------------------------------------------------------------------------ keys


def key_id(name: str, public_key: bytes) -> int:
    """The 32-bit Ed25519 key ID: ``SHA-256(name || 0x0A || 0x01 || public_key)[:4]``.

    It covers the name as well as the key, so renaming a key changes its ID.
    """
    digest = hashlib.sha256(name.encode() + b"\n" + _ALG_ED25519 + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _valid_name(name: str) -> bool:
    """Go's rule: non-empty, no Unicode space, no '+'; we also refuse control characters."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name) and not _CONTROL.search(name)


def _check_name(name: str) -> None:
    if not _valid_name(name):
        raise NoteError(f"invalid key name {name!r}: it must be non-empty, without spaces or '+'")


def _decode_key(key64: str, what: str) -> bytes:
    """Decode the ``base64(0x01 || 32 bytes)`` part of a key string."""
    try:
        raw = base64.b64decode(key64, validate=True)
    except binascii.Error as exc:
        raise NoteError(f"{what} is not valid base64") from exc
    if len(raw) != 1 + _ED25519_KEY_SIZE or raw[:1] != _ALG_ED25519:
        raise NoteError(f"{what} is not an Ed25519 key (type 0x01 and 32 bytes)")
    return raw[1:]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


class NoteVerifier:
    """An Ed25519 public key with the name it signs under."""

    __slots__ = ("_key", "_key_id", "_name", "_raw")

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        _check_name(name)
        self._name = name
        self._key = public_key
        self._raw = _raw_public(public_key)
        self._key_id = key_id(name, self._raw)

    @classmethod
    def from_key_string(cls, vkey: str) -> NoteVerifier:
        """Parse Go's verifier key ``name+hex8(keyid)+base64(0x01||pubkey)``."""
        parts = vkey.split("+", 2)
        if len(parts) != 3 or not _HEX8.fullmatch(parts[1]):
            raise NoteError("verifier key must look like name+hex8+base64")
        name, hex_id, key64 = parts
        _check_name(name)
        raw = _decode_key(key64, "verifier key")
        if key_id(name, raw) != int(hex_id, 16):
            raise NoteError(f"verifier key ID {hex_id} does not match name and key")
        try:
            public_key = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise NoteError("verifier key is not a valid Ed25519 public key") from exc
        return cls(name, public_key)

    def to_key_string(self) -> str:
        """Render Go's verifier key ``name+hex8(keyid)+base64(0x01||pubkey)``."""
        key64 = base64.b64encode(_ALG_ED25519 + self._raw).decode()
        return f"{self._name}+{self._key_id:08x}+{key64}"

    @property
    def name(self) -> str:
        """The key name that appears on signature lines."""
        return self._name

    @property
    def key_id(self) -> int:
        """The 32-bit key ID that prefixes each signature."""
        return self._key_id

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._raw

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (64 bytes, without the key ID) signs ``text``."""
        if len(signature) != _ED25519_SIG_SIZE:
            return False
        try:
            self._key.verify(signature, text)
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NoteVerifier):
            return NotImplemented
        return (self._name, self._raw) == (other._name, other._raw)

    def __hash__(self) -> int:
        return hash((self._name, self._raw))

    def __repr__(self) -> str:
        return f"NoteVerifier({self.to_key_string()!r})"


class NoteSigner:
    """An Ed25519 private key with its name; renders signed notes byte-for-byte like Go."""

    __slots__ = ("_key", "_verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._verifier = NoteVerifier(name, private_key.public_key())

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """A signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_key_string(cls, skey: str) -> NoteSigner:
        """Parse Go's signer key ``PRIVATE+KEY+name+hex8(keyid)+base64(0x01||seed)``."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _HEX8.fullmatch(parts[3]):
            raise NoteError("signer key must look like PRIVATE+KEY+name+hex8+base64")
        _, _, name, hex_id, key64 = parts
        _check_name(name)
        seed = _decode_key(key64, "signer key")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        # The ID hashes the public key, so it can only be checked after deriving it.
        if signer.key_id != int(hex_id, 16):
            raise NoteError(f"signer key ID {hex_id} does not match name and key")
        return signer

    def to_key_string(self) -> str:
        """Render Go's signer key; it holds the private seed, so guard it like a password."""
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        key64 = base64.b64encode(_ALG_ED25519 + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{key64}"

    def verifier(self) -> NoteVerifier:
        """The matching verifier, to hand to auditors and witnesses."""
        return self._verifier

    def verifier_key_string(self) -> str:
        """Go's verifier key string for this signer's public key."""
        return self._verifier.to_key_string()

    @property
    def name(self) -> str:
        """The key name written on signature lines."""
        return self._verifier.name

    @property
    def key_id(self) -> int:
        """The 32-bit key ID that prefixes each signature."""
        return self._verifier.key_id

    def signature_line(self, text: bytes) -> bytes:
        """One ``— name base64(keyid||sig)\\n`` line over ``text`` (for multi-signer notes)."""
        _check_text(text)
        blob = self.key_id.to_bytes(4, "big") + self._key.sign(text)
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n".encode()

    def sign(self, text: bytes) -> bytes:
        """The full signed note: ``text``, a blank line, then this signer's line."""
        return text + b"\n" + self.signature_line(text)

    def __repr__(self) -> str:
        return f"NoteSigner(name={self.name!r}, key_id={self.key_id:08x})"


# ----------------------------------------------------------------------- notes


def _text_lines(text: bytes, what: str, error: type[Exception]) -> str:
    """``text`` decoded as UTF-8 ending in a newline, as notes and checkpoints are; else ``error``."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not valid UTF-8") from exc
    if not decoded.endswith("\n"):
        raise error(f"{what} must end with a newline")
    return decoded


def _check_text(text: bytes) -> str:
    """Decode note text, enforcing UTF-8 and no control characters but newline."""
    decoded = _text_lines(text, "note", NoteError)
    if _CONTROL.search(decoded):
        raise NoteError("note contains a control character other than newline")
    return decoded


def _parse_signature_line(line: str) -> tuple[str, int, bytes]:
    if not line.startswith(_SIG_PREFIX):
        raise NoteError(f"signature line does not start with an em dash and a space: {line!r}")
    name, _, sig64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not _valid_name(name) or not sig64:
        raise NoteError(f"malformed signature line: {line!r}")
    try:
        blob = base64.b64decode(sig64, validate=True)
    except binascii.Error as exc:
        raise NoteError(f"signature is not valid base64: {line!r}") from exc
    if len(blob) < 5:
        raise NoteError(f"signature is too short: {line!r}")
    return name, int.from_bytes(blob[:4], "big"), blob[4:]


def _index(verifiers: Sequence[NoteVerifier]) -> dict[tuple[str, int], NoteVerifier]:
    known: dict[tuple[str, int], NoteVerifier] = {}
    for v in verifiers:
        other = known.setdefault((v.name, v.key_id), v)
        if other != v:
            raise NoteError(f"ambiguous key {v.name}+{v.key_id:08x}: two keys share the ID")
    return known


def open_note(note: bytes, verifiers: Sequence[NoteVerifier]) -> tuple[bytes, list[str]]:
    """Check a signed note; return its text and the names of the keys that verified it.

    Signatures by unknown keys are ignored, as C2SP requires; a bad signature
    by a known key, or no signature by any known key, raises :class:`NoteError`.
    """
    decoded = _check_text(note)
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if not block:
        raise NoteError("note has no signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError(f"note has more than {_MAX_SIGNATURES} signature lines")
    known = _index(verifiers)
    signed = text.encode()
    names: list[str] = []
    for line in lines:
        name, kid, signature = _parse_signature_line(line)
        verifier = known.get((name, kid))
        if verifier is None:
            continue
        if not verifier.verify(signed, signature):
            raise NoteError(f"invalid signature for key {name}+{kid:08x}")
        if name not in names:
            names.append(name)
    if not names:
        raise NoteError("note has no signature from a known key")
    return signed, names


# ------------------------------------------------------------------ checkpoints


def _valid_origin(origin: str) -> bool:
    """C2SP tlog-checkpoint: any non-empty line (a note's text holds no control character)."""
    return bool(origin) and not _CONTROL.search(origin) and "\n" not in origin


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: which log (``origin``), how many leaves, their RFC 6962 root, and any extension lines.

    As C2SP tlog-checkpoint allows, the origin is any non-empty line (by convention a schema-less
    URL) and optional, non-empty extension lines may follow the root; they are parsed, kept and
    signed over, and carry no meaning here. What a checkpoint proves is checked against the origin
    the verifier expects (see :func:`open_checkpoint`).
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _valid_origin(self.origin):
            raise CheckpointError(
                f"invalid origin {self.origin!r}: it must be one non-empty line without control characters"
            )
        if isinstance(self.size, bool) or not 0 <= self.size <= _MAX_SIZE:
            raise CheckpointError(f"checkpoint size {self.size!r} is outside 0..2**64-1")
        if len(self.root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root must be {HASH_SIZE} bytes")
        for line in self.extensions:
            if not _valid_origin(line):  # the same rule: one non-empty line
                raise CheckpointError(f"invalid extension line {line!r}: it must be one non-empty line")

    def body(self) -> bytes:
        """The checkpoint note text: ``origin\nsize\nbase64(root)\n``, then any extension lines."""
        root64 = base64.b64encode(self.root).decode()
        extensions = "".join(f"{line}\n" for line in self.extensions)
        return f"{self.origin}\n{self.size}\n{root64}\n{extensions}".encode()

    @classmethod
    def parse(cls, text: bytes) -> Checkpoint:
        """Parse a checkpoint body (C2SP tlog-checkpoint), extension lines included."""
        lines = _text_lines(text, "checkpoint", CheckpointError)[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError(
                f"checkpoint must have at least 3 lines (origin, size, root), got {len(lines)}"
            )
        origin, size_text, root64, *extensions = lines
        if not _DECIMAL.fullmatch(size_text):
            raise CheckpointError(f"checkpoint size {size_text!r} is not a canonical decimal")
        try:
            root = base64.b64decode(root64, validate=True)
        except binascii.Error as exc:
            raise CheckpointError(f"checkpoint root {root64!r} is not valid base64") from exc
        if len(root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root is {len(root)} bytes, not {HASH_SIZE}")
        if base64.b64encode(root).decode() != root64:
            raise CheckpointError(f"checkpoint root {root64!r} is not canonical base64")
        return cls(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> bytes:
    """The signed note for ``checkpoint``, ready to publish or hand to a witness."""
    return signer.sign(checkpoint.body())


def open_checkpoint(
    note: bytes, verifiers: Sequence[NoteVerifier], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and parse it; optionally require a given ``origin``.

    Raises :class:`NoteError` for signature problems and :class:`CheckpointError`
    for a bad body or an unexpected origin.
    """
    text, _ = open_note(note, verifiers)
    checkpoint = Checkpoint.parse(text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint is for {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint
