"""Signed notes and checkpoints: Go's vectors byte for byte, and strict rejection."""

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferlog.errors import CheckpointError, NoteError
from inferlog.ledger import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    key_id,
    leaf_hash,
    open_checkpoint,
    open_note,
    sign_checkpoint,
)

# golang.org/x/mod sumdb/note/note_test.go
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    b"If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdng"
    "otpRZb6KE6RyyBwJnAM=\n"
).encode()
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWL"
    "ox33WWd1RvMc+QQ=\n"
).encode()

PETER = NoteVerifier.from_key_string(PETER_VKEY)
ENOCH = NoteVerifier.from_key_string(ENOCH_VKEY)
ROOT = leaf_hash(b"root")


# ------------------------------------------------------------------- Go vectors


def test_sign_reproduces_go_vector() -> None:
    """Signing Go's test text with Go's test key gives Go's signature line byte for byte."""
    signer = NoteSigner.from_key_string(PETER_SKEY)
    assert signer.sign(TEXT) == TEXT + b"\n" + PETER_SIG


def test_key_strings_round_trip() -> None:
    """Signer and verifier key strings parse and render back to Go's exact strings."""
    signer = NoteSigner.from_key_string(PETER_SKEY)
    assert signer.to_key_string() == PETER_SKEY
    assert signer.verifier_key_string() == PETER_VKEY
    assert signer.verifier() == PETER
    assert PETER.to_key_string() == PETER_VKEY
    assert (signer.name, signer.key_id) == ("PeterNeumann", 0xC74F20A3)


def test_key_id_matches_go() -> None:
    """key_id hashes name, newline, type byte and public key into Go's 0xc74f20a3."""
    assert key_id("PeterNeumann", PETER.public_key) == 0xC74F20A3
    assert key_id("PeterNeumann2", PETER.public_key) != 0xC74F20A3


def test_open_reports_only_known_signers() -> None:
    """Go's two-signature note opens with the names of known keys; the unknown one is ignored."""
    note = TEXT + b"\n" + PETER_SIG + ENOCH_SIG
    assert open_note(note, [PETER]) == (TEXT, ["PeterNeumann"])
    assert open_note(note, [ENOCH]) == (TEXT, ["EnochRoot"])
    assert open_note(note, [PETER, ENOCH]) == (TEXT, ["PeterNeumann", "EnochRoot"])


def _mangled(key: str) -> list[str]:
    """Every proper substring of ``key`` and every one-character increment of it (Go's test)."""
    out = [key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)]
    out.remove(key)
    out += [key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))]
    return out


def test_mangled_verifier_keys_are_rejected() -> None:
    """No substring or single-character change of a verifier key parses (Go's TestNewVerifier)."""
    for bad in _mangled(PETER_VKEY):
        with pytest.raises(NoteError):
            NoteVerifier.from_key_string(bad)


def test_mangled_signer_keys_are_rejected() -> None:
    """No substring or single-character change of a signer key parses (Go's TestNewSigner)."""
    for bad in _mangled(PETER_SKEY):
        with pytest.raises(NoteError):
            NoteSigner.from_key_string(bad)


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
    ids=["wrong-length", "unknown-algorithm"],
)
def test_verifier_key_with_adjusted_hash_is_rejected(vkey: str) -> None:
    """Keys of the wrong length or algorithm fail even when their key ID was recomputed."""
    with pytest.raises(NoteError):
        NoteVerifier.from_key_string(vkey)


# -------------------------------------------------------------- sign and open


def test_generated_signer_round_trip() -> None:
    """A fresh signer's note opens with its verifier, also after both keys go through strings."""
    signer = NoteSigner.generate("inferlog.example/test")
    note = signer.sign(b"hello\n")
    assert open_note(note, [signer.verifier()]) == (b"hello\n", ["inferlog.example/test"])
    again = NoteSigner.from_key_string(signer.to_key_string())
    verifier = NoteVerifier.from_key_string(signer.verifier_key_string())
    assert again.sign(b"hello\n") == note  # Ed25519 is deterministic
    assert open_note(note, [verifier])[1] == ["inferlog.example/test"]


def test_repr_hides_private_key() -> None:
    """A signer's repr names the key but never shows the seed."""
    signer = NoteSigner.from_key_string(PETER_SKEY)
    assert "AYEKFALV" not in repr(signer)
    assert "c74f20a3" in repr(signer)


def test_only_unknown_signatures_is_rejected() -> None:
    """A note signed only by keys we do not know is rejected (C2SP MUST)."""
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(TEXT + b"\n" + ENOCH_SIG, [PETER])
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(TEXT + b"\n" + PETER_SIG, [])


def test_tampered_text_is_rejected() -> None:
    """Changing one byte of the signed text invalidates the known key's signature."""
    note = TEXT.replace(b"answer", b"Answer") + b"\n" + PETER_SIG
    with pytest.raises(NoteError, match="invalid signature for key PeterNeumann"):
        open_note(note, [PETER])


def test_bad_signature_by_known_key_is_rejected_even_with_a_good_one() -> None:
    """A failing signature by a known key rejects the note, though another known key verifies."""
    bad = PETER_SIG[:60] + b"ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(TEXT + b"\n" + bad, [PETER])
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(TEXT + b"\n" + ENOCH_SIG + bad, [PETER, ENOCH])


def test_unknown_key_with_garbage_signature_is_ignored() -> None:
    """An unknown key's line is skipped even if its signature bytes are wrong."""
    enoch_bad = ENOCH_SIG[:60] + b"ABCD" + ENOCH_SIG[60:]
    note = TEXT + b"\n" + PETER_SIG + PETER_SIG + enoch_bad
    assert open_note(note, [PETER]) == (TEXT, ["PeterNeumann"])


@pytest.mark.parametrize("dash", ["-", "\u2013", "\u2015", "\u2014\u2014"])
def test_wrong_dash_is_rejected(dash: str) -> None:
    """Signature lines must start with U+2014 EM DASH and a space, not a look-alike."""
    line = PETER_SIG.decode().replace("\u2014", dash, 1).encode()
    with pytest.raises(NoteError, match="em dash"):
        open_note(TEXT + b"\n" + line, [PETER])


def test_sixteen_signatures_accepted_and_over_a_hundred_rejected() -> None:
    """At least 16 signature lines are accepted (C2SP) and more than 100 are refused (Go)."""
    assert open_note(TEXT + b"\n" + PETER_SIG * 16, [PETER])[1] == ["PeterNeumann"]
    assert open_note(TEXT + b"\n" + PETER_SIG * 100, [PETER])[1] == ["PeterNeumann"]
    with pytest.raises(NoteError, match="more than 100"):
        open_note(TEXT + b"\n" + PETER_SIG * 101, [PETER])


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + b"\n",
        TEXT + b"\n" + PETER_SIG[:-1],
        b"\x01" + TEXT + b"\n" + PETER_SIG,
        b"\t" + TEXT + b"\n" + PETER_SIG,
        TEXT + b"\x7f\n" + PETER_SIG,
        b"\xff" + TEXT + b"\n" + PETER_SIG,
        TEXT + b"\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZ=\n".encode(),
        TEXT + b"\n" + PETER_SIG + b"Unexpected line.\n",
        TEXT + b"\n" + "— PeterNeumann\n".encode(),
        TEXT + b"\n" + "— PeterNeumann !!!!\n".encode(),
        TEXT + b"\n" + "— PeterNeumann AAAA\n".encode(),
        TEXT + b"\r\n" + PETER_SIG,
    ],
    ids=[
        "no-signatures",
        "blank-line-only",
        "no-final-newline",
        "control-char",
        "tab",
        "delete-char",
        "not-utf8",
        "space-in-name",
        "unexpected-line",
        "no-signature",
        "bad-base64",
        "signature-too-short",
        "carriage-return",
    ],
)
def test_malformed_notes_are_rejected(note: bytes) -> None:
    """Notes that break the signed-note grammar raise NoteError (Go's bad-message list and more)."""
    with pytest.raises(NoteError):
        open_note(note, [PETER])


@pytest.mark.parametrize(
    "text",
    [b"no newline", b"tab\there\n", b"\xff\n", b""],
    ids=["no-newline", "control-char", "not-utf8", "empty"],
)
def test_sign_refuses_text_it_could_not_open(text: bytes) -> None:
    """The signer refuses text that no verifier would accept."""
    with pytest.raises(NoteError):
        NoteSigner.from_key_string(PETER_SKEY).sign(text)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\nb", "a\u00a0b"])
def test_invalid_key_names_are_rejected(name: str) -> None:
    """Key names must be non-empty, without spaces (any Unicode space) or '+'."""
    with pytest.raises(NoteError, match="invalid key name"):
        NoteSigner.generate(name)


# ------------------------------------------------------------------ checkpoints


def test_checkpoint_body_bytes() -> None:
    """The body is exactly origin, decimal size and standard base64 root, each ending in newline."""
    cp = Checkpoint("example.com/log", 17, bytes(range(32)))
    assert cp.body() == b"example.com/log\n17\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    assert Checkpoint.parse(cp.body()) == cp


def test_checkpoint_sign_and_open() -> None:
    """A signed checkpoint opens back to the same checkpoint, and checks its origin if asked."""
    signer = NoteSigner.generate("example.com/log")
    cp = Checkpoint("example.com/log", 0, ROOT)
    note = sign_checkpoint(cp, signer)
    assert note.startswith(cp.body() + "\n\u2014 example.com/log ".encode())
    assert open_checkpoint(note, [signer.verifier()]) == cp
    assert open_checkpoint(note, [signer.verifier()], origin="example.com/log") == cp
    with pytest.raises(CheckpointError, match="expected"):
        open_checkpoint(note, [signer.verifier()], origin="example.com/other")
    with pytest.raises(NoteError):
        open_checkpoint(note, [PETER])


def test_go_note_is_not_a_checkpoint() -> None:
    """A correctly signed note whose text is not a checkpoint body raises CheckpointError."""
    with pytest.raises(CheckpointError):
        open_checkpoint(TEXT + b"\n" + PETER_SIG, [PETER])


lines = st.text(alphabet=st.characters(exclude_categories=["Cc", "Cs"]), min_size=1)


@given(lines, st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32), st.lists(lines, max_size=3))
def test_checkpoint_round_trip(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    """Any valid checkpoint (any one-line origin, extension lines) renders to a body that parses back to it."""
    cp = Checkpoint(origin, size, root, tuple(extensions))
    assert Checkpoint.parse(cp.body()) == cp


def test_checkpoint_accepts_what_c2sp_allows() -> None:
    """Extension lines after the root, and an origin with spaces or '+', parse as C2SP tlog-checkpoint says."""
    cp = Checkpoint.parse(f"a log+of things\n5\n{ROOT64}\nextension one\n— two\n".encode())
    assert (cp.origin, cp.size, cp.root) == ("a log+of things", 5, ROOT)
    assert cp.extensions == ("extension one", "— two")
    signer = NoteSigner.generate("example.com/log")
    note = sign_checkpoint(cp, signer)
    assert open_checkpoint(note, [signer.verifier()], origin="a log+of things") == cp


ROOT64 = base64.b64encode(ROOT).decode()
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# Same bytes, but one of the two unused low bits of the last character set.
NONCANONICAL_ROOT64 = ROOT64[:-2] + B64_ALPHABET[B64_ALPHABET.index(ROOT64[-2]) ^ 1] + "="


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f"log\n01\n{ROOT64}\n", "canonical decimal"),
        (f"log\n+1\n{ROOT64}\n", "canonical decimal"),
        (f"log\n 1\n{ROOT64}\n", "canonical decimal"),
        (f"log\n-1\n{ROOT64}\n", "canonical decimal"),
        (f"log\n1_0\n{ROOT64}\n", "canonical decimal"),
        (f"log\n\u0661\n{ROOT64}\n", "canonical decimal"),
        (f"log\n\n{ROOT64}\n", "canonical decimal"),
        (f"log\n{2**64}\n{ROOT64}\n", "outside"),
        (f"log\n1\n{ROOT64}", "end with a newline"),
        (f"log\n1\n{ROOT64}\n\n", "extension line"),
        (f"log\n1\n{ROOT64}\next\n\n", "extension line"),
        ("log\n1\n", "3 lines"),
        ("log\n1\n!!!!\n", "not valid base64"),
        ("log\n1\nAAAA\n", "not 32"),
        (f"log\n1\n{ROOT64[:-1]}\n", "not valid base64"),
        (f"log\n1\n{base64.b64encode(ROOT + b'x').decode()}\n", "not 32"),
        (f"log\n1\n{NONCANONICAL_ROOT64}\n", "canonical base64"),
        (f"\n1\n{ROOT64}\n", "invalid origin"),
        (f"log\t\n1\n{ROOT64}\n", "invalid origin"),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_checkpoint_parse_errors(body: str, message: str) -> None:
    """Checkpoint.parse rejects every non-canonical or malformed body with a clear message."""
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.parse(body.encode())


def test_checkpoint_parse_rejects_non_utf8() -> None:
    """A body that is not UTF-8 is not a checkpoint."""
    with pytest.raises(CheckpointError, match="UTF-8"):
        Checkpoint.parse(b"\xfflog\n1\n" + ROOT64.encode() + b"\n")


@pytest.mark.parametrize(
    ("origin", "size", "root"),
    [
        ("evil\n999", 1, ROOT),
        ("", 1, ROOT),
        ("log", -1, ROOT),
        ("log", 2**64, ROOT),
        ("log", True, ROOT),
        ("log", 1, ROOT[:31]),
    ],
)
def test_checkpoint_fields_are_validated_at_render_time(origin: str, size: int, root: bytes) -> None:
    """Empty origins or newlines in them, and out-of-range sizes or roots, cannot even be constructed."""
    with pytest.raises(CheckpointError):
        Checkpoint(origin, size, root)
