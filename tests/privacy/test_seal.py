"""Field sealing: AES-256-GCM per entry, nested-wrapped data keys, AAD binding, key commitment."""

from __future__ import annotations

import base64
import os

import msgspec
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from inferlog.errors import IntegrityError, KeyDestroyed, UsageError
from inferlog.pipeline import Pipeline
from inferlog.privacy.pseudonym import is_pseudonym
from inferlog.privacy.seal import (
    PREFIX,
    Opener,
    Sealer,
    ensure_usable,
    hkdf_sha256,
    key_commitment,
    rewrap,
)
from inferlog.record.model import InferenceRecord
from inferlog.record.validate import to_entry
from tests.helpers import inference


class MemoryKeyring:
    """A Keyring in a dict (the local key store is tested on its own)."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}
        self.live: dict[str, str] = {}

    def current(self, name: str) -> tuple[str, bytes]:
        ref = self.live.get(name)
        if ref is None or ref not in self.keys:
            return self.rotate(name), self.keys[self.live[name]]
        return ref, self.keys[ref]

    def get(self, ref: str) -> bytes | None:
        return self.keys.get(ref)

    def destroy(self, name: str) -> None:
        for ref in [r for r in self.keys if r.rpartition("#")[0] == name]:
            del self.keys[ref]

    def destroy_ref(self, ref: str) -> None:
        self.keys.pop(ref, None)

    def rotate(self, name: str) -> str:
        version = 1 + int(self.live[name].rpartition("#")[2]) if name in self.live else 1
        ref = self.live[name] = f"{name}#{version}"
        self.keys[ref] = os.urandom(32)
        return ref


def record(**fields: object) -> InferenceRecord:
    base: dict[str, object] = {
        "id": "0190a7b2-0000-7000-8000-000000000001",
        "system": "credit",
        "ts": "2026-11-03T12:00:00Z",
        "model": {"name": "scorer", "version": "1"},
        "input": {"name": "Ada Lovelace", "income": 52000},
        "output": {"score": 0.82},
        "attributes": {"applicant": {"email": "ada@example.org"}, "channel": "web"},
    }
    base.update(fields)
    return msgspec.convert(base, InferenceRecord)


FIELDS = ("input", "output", "attributes.applicant")


def sealer_for(keyring: MemoryKeyring) -> Sealer:
    return Sealer(keyring, lambda system: FIELDS)


@pytest.fixture
def keyring() -> MemoryKeyring:
    return MemoryKeyring()


def test_hkdf_matches_the_cryptography_package() -> None:
    """Our two-HMAC HKDF equals cryptography's HKDF-SHA256 (empty salt, 32 bytes)."""
    dek = os.urandom(32)
    for info in (b"inferlog/v1/enc", b"inferlog/v1/commit"):
        expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(dek)
        assert hkdf_sha256(dek, info) == expected


def test_sealed_fields_hold_ciphertext_and_open_to_the_original(keyring: MemoryKeyring) -> None:
    """input, output and a nested attribute become ciphertext; opening gives the entry back exactly."""
    entry = record(subject="customer-42")
    sealed = inference(sealer_for(keyring)(entry))
    assert sealed.sealed is not None
    assert sealed.sealed.fields == list(FIELDS)
    assert isinstance(sealed.input, str)
    assert sealed.input.startswith(PREFIX)
    assert sealed.attributes["applicant"].startswith(PREFIX)
    assert sealed.attributes["channel"] == "web"  # not listed: untouched
    assert b"Ada" not in msgspec.json.encode(sealed)
    assert sealed.subject is not None
    assert is_pseudonym(sealed.subject)
    assert sealed.sealed.subject == f"subject:{sealed.subject}"
    opened = inference(Opener(keyring).open(sealed, sealed.sealed.dek))
    assert opened.input == entry.input
    assert opened.output == entry.output
    assert opened.attributes == entry.attributes
    assert opened.sealed is None
    assert entry.input == {"name": "Ada Lovelace", "income": 52000}  # the caller's entry is unchanged


def test_the_leaf_carries_the_key_commitment_and_the_store_gets_the_wrapped_key(
    keyring: MemoryKeyring,
) -> None:
    """The pipeline moves the wrapped key out of the body and puts kc in the leaf."""
    prepared = Pipeline([sealer_for(keyring)]).prepare(record())
    assert prepared.key is not None
    assert prepared.entry.sealed is not None
    assert b'"dek"' not in prepared.body
    leaf = msgspec.json.decode(prepared.leaf)
    assert base64.b64decode(leaf["kc"]) == prepared.entry.sealed.kc
    # The body (with kc) passes validation, as a server receiving it would check it.
    assert to_entry(msgspec.json.decode(prepared.body)).sealed == prepared.entry.sealed


def test_swapped_fields_are_refused(keyring: MemoryKeyring) -> None:
    """Moving input's ciphertext into output fails authentication instead of decrypting."""
    sealed = inference(sealer_for(keyring)(record()))
    assert sealed.sealed is not None
    swapped = msgspec.structs.replace(sealed, input=sealed.output, output=sealed.input)
    with pytest.raises(IntegrityError, match="does not decrypt"):
        Opener(keyring).open(swapped, sealed.sealed.dek)


def test_a_key_moved_to_another_entry_is_refused(keyring: MemoryKeyring) -> None:
    """Another entry's wrapped data key does not unwrap for this entry (the AAD binds the id)."""
    sealer = sealer_for(keyring)
    first = sealer(record())
    second = sealer(record(id="0190a7b2-0000-7000-8000-000000000002"))
    assert second.sealed is not None
    with pytest.raises(IntegrityError, match="does not unwrap"):
        Opener(keyring).open(first, second.sealed.dek)


def test_a_wrong_key_is_refused(keyring: MemoryKeyring) -> None:
    """Replacing the epoch key's material makes the data key refuse to unwrap."""
    sealed = sealer_for(keyring)(record())
    assert sealed.sealed is not None
    assert sealed.sealed.dek is not None
    keyring.keys[sealed.sealed.dek.epoch_ref] = os.urandom(32)
    with pytest.raises(IntegrityError, match="does not unwrap"):
        Opener(keyring).open(sealed, sealed.sealed.dek)


def test_a_data_key_that_does_not_match_the_commitment_is_refused(keyring: MemoryKeyring) -> None:
    """An operator who wraps a different data key for the entry is caught by the key commitment."""
    sealer = sealer_for(keyring)
    sealed = sealer(record())
    assert sealed.sealed is not None
    forged = sealer.wrap(sealed.id, os.urandom(32), sealed.sealed.epoch, sealed.sealed.subject)
    with pytest.raises(IntegrityError, match="key commitment"):
        Opener(keyring).open(sealed, forged)


def test_destroying_either_key_shreds_the_entry(keyring: MemoryKeyring) -> None:
    """AND to read, OR to destroy: without the subject key, or without the epoch key, nothing opens."""
    sealer = sealer_for(keyring)
    one = sealer(record(subject="s1"))
    two = sealer(record(id="0190a7b2-0000-7000-8000-000000000003", subject="s2"))
    assert one.sealed is not None
    assert two.sealed is not None
    assert one.sealed.subject is not None
    keyring.destroy(one.sealed.subject)
    with pytest.raises(KeyDestroyed):
        Opener(keyring).open(one, one.sealed.dek)
    assert inference(Opener(keyring).open(two, two.sealed.dek)).input == record().input
    keyring.destroy(two.sealed.epoch)
    with pytest.raises(KeyDestroyed):
        Opener(keyring).open(two, two.sealed.dek)


def test_rotation_rewraps_without_touching_the_ciphertext(keyring: MemoryKeyring) -> None:
    """After rotation the re-wrapped key opens the same, unchanged entry; the old version can go."""
    sealer = sealer_for(keyring)
    sealed = sealer(record(subject="s1"))
    assert sealed.sealed is not None
    assert sealed.sealed.dek is not None
    old = sealed.sealed.dek
    keyring.rotate(sealed.sealed.epoch)
    new = rewrap(Opener(keyring), sealer, sealed.id, old)
    assert new.epoch_ref != old.epoch_ref
    assert new.blob != old.blob
    del keyring.keys[old.epoch_ref]
    assert inference(Opener(keyring).open(sealed, new)).input == record().input


def test_entries_without_the_fields_or_already_sealed_pass_through(keyring: MemoryKeyring) -> None:
    """Nothing to seal: no data key is made; sealing twice is sealing once."""
    sealer = sealer_for(keyring)
    bare = record(input=None, output=None, attributes={})
    assert sealer(bare) is bare
    assert not keyring.keys
    sealed = sealer(record())
    assert sealer(sealed) is sealed
    assert list(keyring.live) == ["epoch:credit:2026-11"]


def test_paths_that_cannot_be_sealed_are_refused() -> None:
    """Wildcards and metadata the leaf needs cannot be encrypted; the message says what can."""
    for path in ("input.*.text", "model", "id", "subject", "attributes", "parameters"):
        with pytest.raises(UsageError, match="cannot encrypt"):
            ensure_usable([path])
    ensure_usable(["input", "attributes.x.y"])


def test_key_commitment_is_deterministic_per_key() -> None:
    """kc depends on the data key alone: the same key gives the same kc, another key another."""
    dek = os.urandom(32)
    assert key_commitment(dek) == key_commitment(dek) != key_commitment(os.urandom(32))


def test_the_epoch_is_the_utc_month(keyring: MemoryKeyring) -> None:
    """23:30 at UTC-2 on Jan 31 is Feb 1 in UTC: the entry belongs to February's epoch key."""
    sealed = sealer_for(keyring)(record(ts="2024-01-31T23:30:00-02:00"))
    assert sealed.sealed is not None
    assert sealed.sealed.epoch == "epoch:credit:2024-02"


def test_the_data_key_derivation_equals_hkdf() -> None:
    """``_derive`` (HMAC over copied SHA-256 states) gives exactly HKDF-SHA256's k_enc and kc."""
    from inferlog.privacy.seal import _derive, key_commitment

    for dek in [os.urandom(32) for _ in range(50)] + [bytes(32), b"\xff" * 32]:
        assert _derive(dek) == (hkdf_sha256(dek, b"inferlog/v1/enc"), key_commitment(dek))


def test_the_random_pool_never_hands_out_the_same_bytes_and_a_forked_child_starts_afresh() -> None:
    """Slices of the pool do not overlap, and after a fork the child does not reuse the parent's pool."""
    from inferlog.privacy.seal import fresh_bytes

    slices = [fresh_bytes(80) for _ in range(200)]  # crosses several 4 KiB refills
    assert len(set(slices)) == len(slices)
    assert all(len(piece) == 80 for piece in slices)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what it draws next must not be what the parent draws next
        os.write(write, fresh_bytes(32))
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 32) != fresh_bytes(32)
