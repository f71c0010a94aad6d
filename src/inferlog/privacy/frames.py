"""Spool frames sealed as a whole: what the SDK writes to disk before the shipper seals fields.

Sealing fields costs tens of microseconds per record; ``record()`` should cost a few. So for a record
without a data subject ``record()`` redacts and pseudonymizes, then seals the whole encoded frame
under the key store's ``spool`` key (one AES-256-GCM call), and the shipper thread opens the frame and
seals the fields before anything leaves the process. A record *with* a subject is sealed under the
subject's key in ``record()`` itself: erasing the subject must shred the spool's copy too, and the
spool key is never destroyed. Nothing readable reaches the spool on disk either way. Every process of
one key store shares the ``spool`` key, so a spool left by a process that died is replayed by the next.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from inferlog.errors import IntegrityError, KeyDestroyed
from inferlog.privacy.seal import NONCE, Keyring, fresh_bytes, hkdf_sha256

SPOOL_KEY = "spool"
MAGIC = b"\xc1E1"  # a byte msgpack never starts a map with, then the format
_AAD = b"inferlog/v1/spool"
_SALT = 16


class FrameCipher:
    """Seals and opens spool frames under the current ``spool`` key (its version rides in the frame).

    Each cipher (one per Log) encrypts under its own subkey, ``HKDF(spool key, random 16-byte salt)``,
    the salt in every frame: the shared key itself never meets AES-GCM's 2**32 random-nonce limit.
    Frame: magic (3) | key version (4) | salt (16) | nonce (12) | ciphertext and tag.
    """

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        ref, key = keyring.current(SPOOL_KEY)
        self._version = int(ref.rpartition("#")[2]).to_bytes(4, "big")
        self._salt = os.urandom(_SALT)
        self._aead = AESGCM(_subkey(key, self._salt))
        self._head = MAGIC + self._version + self._salt
        self._opened: dict[bytes, AESGCM] = {self._version + self._salt: self._aead}

    def seal(self, frame: bytes) -> bytes:
        nonce = fresh_bytes(NONCE)  # a slice of the pooled os.urandom: the system call was half the cost
        return self._head + nonce + self._aead.encrypt(nonce, frame, _AAD)

    def open(self, data: bytes) -> bytes:
        """The frame inside ``data``; a frame written without a policy passes through as it is."""
        if not data.startswith(MAGIC):
            return data
        which = data[3 : 7 + _SALT]
        aead = self._opened.get(which)
        if aead is None:
            key = self.keyring.get(f"{SPOOL_KEY}#{int.from_bytes(which[:4], 'big')}")
            if key is None:
                raise KeyDestroyed("a spool frame's key was destroyed: the frame cannot be read")
            if len(self._opened) > 1024:
                self._opened.clear()
            aead = self._opened[which] = AESGCM(_subkey(key, which[4:]))
        start = 7 + _SALT
        try:
            return aead.decrypt(data[start : start + NONCE], data[start + NONCE :], _AAD)
        except InvalidTag:
            raise IntegrityError("a spool frame does not decrypt under its key") from None


def _subkey(key: bytes, salt: bytes) -> bytes:
    return hkdf_sha256(key, b"inferlog/v1/spool-writer" + salt)
