"""Sealed spool frames: opaque on disk, opened by any process of the same key store."""

from __future__ import annotations

import pytest

from inferlog.errors import IntegrityError, KeyDestroyed
from inferlog.privacy.frames import MAGIC, FrameCipher
from tests.privacy.test_seal import MemoryKeyring


def test_a_frame_round_trips_and_hides_its_content() -> None:
    """seal → bytes without the plaintext, marked; open → the frame; unmarked frames pass through."""
    keyring = MemoryKeyring()
    cipher = FrameCipher(keyring)
    sealed = cipher.seal(b"secret payload")
    assert sealed.startswith(MAGIC)
    assert b"secret" not in sealed
    assert FrameCipher(keyring).open(sealed) == b"secret payload"  # another process, same key store
    assert cipher.open(b"\x85plain msgpack") == b"\x85plain msgpack"


def test_an_altered_frame_or_a_destroyed_key_is_refused() -> None:
    """A flipped byte fails authentication; a frame whose key is gone cannot be read."""
    keyring = MemoryKeyring()
    sealed = FrameCipher(keyring).seal(b"payload")
    with pytest.raises(IntegrityError):
        FrameCipher(keyring).open(sealed[:-1] + bytes([sealed[-1] ^ 1]))
    keyring.rotate("spool")
    keyring.destroy_ref("spool#1")
    with pytest.raises(KeyDestroyed):
        FrameCipher(keyring).open(sealed)
