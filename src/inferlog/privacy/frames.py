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
from inferlog.privacy.seal import NONCE, Keyring

SPOOL_KEY = "spool"
MAGIC = b"\xc1E1"  # a byte msgpack never starts a map with, then the format
_AAD = b"inferlog/v1/spool"


class FrameCipher:
    """Seals and opens spool frames under the current ``spool`` key (its version rides in the frame)."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        ref, key = keyring.current(SPOOL_KEY)
        self._version = int(ref.rpartition("#")[2]).to_bytes(4, "big")
        self._aead = AESGCM(key)
        self._opened: dict[bytes, AESGCM] = {self._version: self._aead}

    def seal(self, frame: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return MAGIC + self._version + nonce + self._aead.encrypt(nonce, frame, _AAD)

    def open(self, data: bytes) -> bytes:
        """The frame inside ``data``; a frame written without a policy passes through as it is."""
        if not data.startswith(MAGIC):
            return data
        version = data[3:7]
        aead = self._opened.get(version)
        if aead is None:
            key = self.keyring.get(f"{SPOOL_KEY}#{int.from_bytes(version, 'big')}")
            if key is None:
                raise KeyDestroyed("a spool frame's key was destroyed: the frame cannot be read")
            aead = self._opened[version] = AESGCM(key)
        try:
            return aead.decrypt(data[7 : 7 + NONCE], data[7 + NONCE :], _AAD)
        except InvalidTag:
            raise IntegrityError("a spool frame does not decrypt under its key") from None
