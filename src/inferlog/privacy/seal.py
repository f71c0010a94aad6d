"""Field encryption with crypto-shredding (docs/privacy.md tells the whole design).

Every sealed entry gets a fresh 256-bit data key (DEK). From it come ``k_enc`` (AES-256-GCM over each
chosen field) and ``kc``, a key commitment the leaf carries, so that whoever holds the keys cannot
later present a different key that opens the same ciphertext to other content. The DEK is wrapped
twice — by the retention epoch's key, then by the data subject's key — so destroying *either* key
shreds the entry ("AND to read, OR to destroy"), in every copy and every backup.

Associated data binds each ciphertext to its place: the entry id, the system, the field path and the
key names. Swapping ``input`` and ``output``, or moving a ciphertext or a wrapped key to another
entry, fails authentication instead of decrypting to someone else's data.

Pure: keys come from a :class:`Keyring` (the keystore implements it), nothing here touches a disk.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from inferlog.errors import IntegrityError, KeyDestroyed, UsageError
from inferlog.privacy.pseudonym import is_pseudonym, pseudonym
from inferlog.record.model import Entry, FeedbackEntry, Sealed, WrappedKey

PREFIX = "ilenc1:"
_NO_OFFSET = dt.timedelta(0)
NONCE = 12
_ZERO_SALT = bytes(32)
_INFO_ENC = b"inferlog/v1/enc"
_INFO_COMMIT = b"inferlog/v1/commit"
PSEUDONYM_KEY = "pseudonym"
FEEDBACK_PAYLOAD = ("label", "outcome", "override", "comment")


class Keyring(Protocol):
    """What sealing needs from a key store: current key versions by name, old ones by reference."""

    def current(self, name: str) -> tuple[str, bytes]:
        """The newest live version of the key called ``name`` as ``(ref, key)``, made if there is none."""
        ...

    def get(self, ref: str) -> bytes | None:
        """The key version ``ref`` (``name#version``), or None once it was destroyed."""
        ...


def hkdf_sha256(ikm: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) with an empty salt and 32 bytes out.

    Two HMAC calls through ``hmac.digest`` (C), several times cheaper per entry than building a
    ``cryptography`` HKDF object; a test checks both give the same bytes.
    """
    return _expand(_extract(ikm), info)


def _extract(ikm: bytes) -> bytes:
    return hmac.digest(_ZERO_SALT, ikm, "sha256")


def _expand(prk: bytes, info: bytes) -> bytes:
    return hmac.digest(prk, info + b"\x01", "sha256")


def _derive(dek: bytes) -> tuple[bytes, bytes]:
    """``(k_enc, kc)`` from one extract: what sealing and opening need from a data key.

    The same HMACs as :func:`hkdf_sha256`, written out over hashlib states (RFC 2104): each
    ``hmac.digest`` call sets up an OpenSSL 3 MAC afresh, several µs, while a copied SHA-256 state
    costs a fraction of that. The extract's key (the zero salt) is padded once at import, the
    expands' key (the PRK) once per data key. A test checks the bytes against ``hkdf_sha256``.
    """
    prk = _hmac(_ZERO_SALT_PADS, dek)
    pads = _pads(prk)
    return _hmac(pads, _INFO_ENC + b"\x01"), _hmac(pads, _INFO_COMMIT + b"\x01")


_IPAD = int.from_bytes(b"\x36" * 64, "big")
_OPAD = int.from_bytes(b"\x5c" * 64, "big")
_Pads = tuple[Any, Any]  # SHA-256 states after the inner and the outer padded key


def _pads(key: bytes) -> _Pads:
    """HMAC-SHA256's inner and outer states for ``key`` (at most one 64-byte block, as ours are)."""
    padded = int.from_bytes(key.ljust(64, b"\0"), "big")
    return (
        hashlib.sha256((padded ^ _IPAD).to_bytes(64, "big")),
        hashlib.sha256((padded ^ _OPAD).to_bytes(64, "big")),
    )


def _hmac(pads: _Pads, message: bytes) -> bytes:
    inner = pads[0].copy()
    inner.update(message)
    outer = pads[1].copy()
    outer.update(inner.digest())
    digest: bytes = outer.digest()
    return digest


_ZERO_SALT_PADS = _pads(_ZERO_SALT)


class _RandomPool:
    """Bytes from ``os.urandom`` fetched 4 KiB at a time: a data key and its nonces are ~80 bytes a
    record, and the system call cost more than the rest of the key derivation. Each byte is handed
    out once (under a lock); a forked child drops the pool, so parent and child never share bytes
    (that would repeat a nonce under a key-encryption key)."""

    SIZE = 4096

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lock = threading.Lock()  # fresh in a child: a parent thread may have held the old one
        self.pool, self.offset = b"", 0

    def __call__(self, n: int) -> bytes:
        if n > self.SIZE:
            return os.urandom(n)
        with self.lock:
            if self.offset + n > len(self.pool):
                self.pool, self.offset = os.urandom(self.SIZE), 0
            out = self.pool[self.offset : self.offset + n]
            self.offset += n
        return out


fresh_bytes = _RandomPool()
os.register_at_fork(after_in_child=fresh_bytes.reset)


def key_commitment(dek: bytes) -> bytes:
    """``kc = HKDF-SHA256(DEK, info="inferlog/v1/commit")``."""
    return hkdf_sha256(dek, _INFO_COMMIT)


def epoch_name(entry: Entry) -> str:
    """The retention epoch key of an entry: one per system and calendar month (UTC) of ``ts``."""
    ts = entry.ts if entry.ts.utcoffset() == _NO_OFFSET else entry.ts.astimezone(dt.UTC)
    return f"epoch:{entry.system}:{ts.year:04d}-{ts.month:02d}"


def subject_name(subject_ref: str) -> str:
    return f"subject:{subject_ref}"


def name_of(ref: str) -> str:
    """``epoch:s:2026-11#2`` → ``epoch:s:2026-11``."""
    return ref.rpartition("#")[0] or ref


def _field_aad(entry: Entry, path: str, epoch: str, subject: str | None) -> bytes:
    return "\x1f".join(("inferlog/v1/field", entry.system, entry.id, path, epoch, subject or "")).encode()


def _wrap_aad(entry_id: str, epoch: str, subject: str | None) -> bytes:
    return "\x1f".join(("inferlog/v1/dek", entry_id, epoch, subject or "")).encode()


# -- dotted paths into an entry (dicts only) ---------------------------------------------------


def _get(entry: Entry, path: str) -> tuple[bool, Any]:
    value: Any
    if "." not in path:  # the common case: a top-level field (input, output)
        value = getattr(entry, path, None)
        return value is not None, value
    head, _, rest = path.partition(".")
    if head not in entry.__struct_fields__:
        return False, None
    value = getattr(entry, head)
    for part in rest.split(".") if rest else ():
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return value is not None, value


def _with(values: dict[str, Any], entry: Entry, path: str, new: Any) -> None:
    """Set ``path`` to ``new`` in ``values`` (top-level fields to replace), copying dicts on the way."""
    head, _, rest = path.partition(".")
    if not rest:
        values[head] = new
        return
    top = values.get(head, getattr(entry, head))
    root = dict(top)
    node = root
    parts = rest.split(".")
    for part in parts[:-1]:
        node[part] = dict(node[part])
        node = node[part]
    node[parts[-1]] = new
    values[head] = root


class Sealer:
    """The encryption Processor: seals the chosen fields of each entry under a fresh data key.

    ``fields_for(system)`` says which dotted paths to seal (``input``, ``output``,
    ``attributes.applicant``, …); feedback entries of a system that seals anything have their label,
    outcome, override and comment sealed. Entries already sealed (by the SDK, before its spool) pass through,
    so the same policy can run at the edge and again at the store. With a subject, the entry's
    ``subject`` is replaced by its keyed pseudonym first: the subject key's name, the ``subject``
    column and the body then never hold the raw identifier.
    """

    def __init__(self, keyring: Keyring, fields_for: Callable[[str], Sequence[str]]) -> None:
        self.keyring = keyring
        self.fields_for = fields_for
        self._aead: dict[str, AESGCM] = {}
        self._encode = msgspec.json.Encoder().encode
        self._pseudonyms: dict[str, str] = {}  # subject -> pseudonym: one HMAC per subject, not per entry

    def _pseudonym(self, subject: str) -> str:
        found = self._pseudonyms.get(subject)
        if found is None:
            if len(self._pseudonyms) > 65_536:
                self._pseudonyms.clear()
            found = self._pseudonyms[subject] = pseudonym(self.keyring.current(PSEUDONYM_KEY)[1], subject)
        return found

    def _kek(self, name: str) -> tuple[str, AESGCM]:
        ref, key = self.keyring.current(name)
        aead = self._aead.get(ref)
        if aead is None:
            if len(self._aead) > 4096:
                self._aead.clear()
            aead = self._aead[ref] = AESGCM(key)
        return ref, aead

    def __call__(self, entry: Entry) -> Entry:
        if entry.sealed is not None:
            return entry
        chosen = self.fields_for(entry.system)
        if chosen and type(entry) is FeedbackEntry:
            chosen = FEEDBACK_PAYLOAD  # a review can say as much as the inference it is about
        paths = [(p, found[1]) for p in chosen if (found := _get(entry, p))[0]]
        subject = getattr(entry, "subject", None)
        values: dict[str, Any] = {}
        subject_key: str | None = None
        if subject is not None:
            if not is_pseudonym(subject):
                subject = self._pseudonym(subject)
                values["subject"] = subject
            subject_key = subject_name(subject)
        if not paths:
            return msgspec.structs.replace(entry, **values) if values else entry
        epoch = epoch_name(entry)
        # The data key and every nonce (two per wrap, one per field) in one slice of the pool.
        fresh = fresh_bytes(32 + NONCE * (2 + len(paths)))
        dek = fresh[:32]
        k_enc, kc = _derive(dek)
        field_aead = AESGCM(k_enc)
        for index, (path, value) in enumerate(paths):
            nonce = fresh[32 + NONCE * (2 + index) : 32 + NONCE * (3 + index)]
            sealed = field_aead.encrypt(
                nonce, self._encode(value), _field_aad(entry, path, epoch, subject_key)
            )
            _with(values, entry, path, PREFIX + base64.b64encode(nonce + sealed).decode("ascii"))
        wrapped = self.wrap(entry.id, dek, epoch, subject_key, fresh[32 : 32 + 2 * NONCE])
        values["sealed"] = Sealed(
            fields=[path for path, _ in paths], kc=kc, epoch=epoch, subject=subject_key, dek=wrapped
        )
        return msgspec.structs.replace(entry, **values)

    def wrap(
        self, entry_id: str, dek: bytes, epoch: str, subject: str | None, nonces: bytes | None = None
    ) -> WrappedKey:
        """``Wrap(KEK_subject, Wrap(KEK_epoch, DEK))``; the subject layer only when there is a subject."""
        nonces = nonces or fresh_bytes(2 * NONCE)
        aad = _wrap_aad(entry_id, epoch, subject)
        epoch_ref, epoch_aead = self._kek(epoch)
        nonce = nonces[:NONCE]
        blob = nonce + epoch_aead.encrypt(nonce, dek, aad)
        subject_ref = None
        if subject is not None:
            subject_ref, subject_aead = self._kek(subject)
            nonce = nonces[NONCE : 2 * NONCE]
            blob = nonce + subject_aead.encrypt(nonce, blob, aad)
        return WrappedKey(epoch_ref=epoch_ref, subject_ref=subject_ref, blob=blob)


class Opener:
    """Opens sealed entries for readers allowed to see plaintext; checks the key commitment first."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._decode = msgspec.json.decode

    def _key(self, ref: str, entry_id: str) -> bytes:
        key = self.keyring.get(ref)
        if key is None:
            raise KeyDestroyed(f"entry {entry_id} was shredded: its key {name_of(ref)} was destroyed")
        return key

    def unwrap(self, entry_id: str, wrapped: WrappedKey) -> bytes:
        """The data key of an entry, from its wrapped key (both key layers must still exist)."""
        epoch = name_of(wrapped.epoch_ref)
        subject = name_of(wrapped.subject_ref) if wrapped.subject_ref else None
        aad = _wrap_aad(entry_id, epoch, subject)
        blob = wrapped.blob
        try:
            if wrapped.subject_ref is not None:
                kek = self._key(wrapped.subject_ref, entry_id)
                blob = _decrypt(kek, blob, aad)
            kek = self._key(wrapped.epoch_ref, entry_id)
            dek = _decrypt(kek, blob, aad)
        except (InvalidTag, ValueError):  # a wrong key, or a blob too short to hold a nonce and a tag
            raise IntegrityError(
                f"the data key of entry {entry_id} does not unwrap: wrong key, or a key moved from another entry"
            ) from None
        if len(dek) != 32:
            raise IntegrityError(f"the data key of entry {entry_id} is not a 256-bit key")
        return dek

    def open(self, entry: Entry, wrapped: WrappedKey | None) -> Entry:
        """The entry with its sealed fields decrypted (and ``sealed`` removed)."""
        sealed = entry.sealed
        if sealed is None:
            return entry
        if wrapped is None:
            raise KeyDestroyed(f"entry {entry.id} was shredded: its data key is gone")
        if name_of(wrapped.epoch_ref) != sealed.epoch or (
            (name_of(wrapped.subject_ref) if wrapped.subject_ref else None) != sealed.subject
        ):
            raise IntegrityError(f"the data key stored for entry {entry.id} belongs to other keys")
        k_enc, kc = _derive(self.unwrap(entry.id, wrapped))
        if not hmac.compare_digest(kc, sealed.kc):
            raise IntegrityError(f"entry {entry.id}: the data key does not match the key commitment")
        field_aead = AESGCM(k_enc)
        values: dict[str, Any] = {"sealed": None}
        for path in sealed.fields:
            present, token = _get(entry, path)
            if not present or not isinstance(token, str) or not token.startswith(PREFIX):
                raise IntegrityError(f"entry {entry.id}: sealed field {path} holds no ciphertext")
            aad = _field_aad(entry, path, sealed.epoch, sealed.subject)
            try:
                plain = self._decode(field_aead.decrypt(*_nonce_and_text(token), aad))
            except (InvalidTag, ValueError, msgspec.DecodeError):  # ValueError: bad base64 or nonce
                raise IntegrityError(
                    f"entry {entry.id}: field {path} does not decrypt: wrong key, or ciphertext moved from another field or entry"
                ) from None
            _with(values, entry, path, plain)
        return msgspec.structs.replace(entry, **values)


def _decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """``nonce || ciphertext`` decrypted; ``ValueError`` when it is too short to be one."""
    if len(blob) < NONCE + 16:
        raise ValueError("too short for a nonce and a tag")
    return AESGCM(key).decrypt(blob[:NONCE], blob[NONCE:], aad)


def _nonce_and_text(token: str) -> tuple[bytes, bytes]:
    """The nonce and ciphertext of an ``ilenc1:`` token; ``ValueError`` when it cannot hold them."""
    raw = base64.b64decode(token[len(PREFIX) :], validate=True)
    if len(raw) < NONCE + 16:
        raise ValueError("too short for a nonce and a tag")
    return raw[:NONCE], raw[NONCE:]


def rewrap(opener: Opener, sealer: Sealer, entry_id: str, wrapped: WrappedKey) -> WrappedKey:
    """The same data key wrapped under the *current* versions of its keys (key rotation)."""
    dek = opener.unwrap(entry_id, wrapped)
    subject = name_of(wrapped.subject_ref) if wrapped.subject_ref else None
    return sealer.wrap(entry_id, dek, name_of(wrapped.epoch_ref), subject)


def subject_ref(keyring: Keyring, subject: str) -> str:
    """The keyed pseudonym under which a subject's records are stored (as given, if already one)."""
    if is_pseudonym(subject):
        return subject
    return pseudonym(keyring.current(PSEUDONYM_KEY)[1], subject)


def ensure_usable(fields: Sequence[str]) -> None:
    """Refuse encryption paths this module cannot seal (wildcards; an entry's own metadata)."""
    for path in fields:
        head = path.partition(".")[0]
        whole_object = path in _OBJECTS  # must stay a dict: name a key below it
        if "*" in path or head in _NEVER_SEALED or whole_object:
            raise UsageError(
                f"cannot encrypt {path!r}: name a payload field such as input, output or attributes.x"
            )


_OBJECTS = frozenset({"attributes", "parameters", "error"})
_NEVER_SEALED = frozenset(
    {"id", "system", "ts", "kind", "model", "sealed", "schema_version", "status", "subject", "source"}
)

__all__ = [
    "PREFIX",
    "Keyring",
    "Opener",
    "Sealer",
    "epoch_name",
    "fresh_bytes",
    "hkdf_sha256",
    "key_commitment",
    "rewrap",
    "subject_ref",
]
