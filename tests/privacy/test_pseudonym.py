"""Keyed pseudonyms: stable per key, different across keys, idempotent as a Processor."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferlog.errors import UsageError
from inferlog.privacy.pseudonym import Pseudonymizer, is_pseudonym, pseudonym
from inferlog.record.model import Sealed
from tests.privacy.entries import feedback, inference, snapshot

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


def test_pseudonym_is_the_truncated_hmac_with_a_prefix() -> None:
    """``pse_`` + the first 16 bytes of HMAC-SHA256(key, UTF-8 value), in hex."""
    expected = "pse_" + hmac.new(KEY, b"customer-42", hashlib.sha256).digest()[:16].hex()
    assert pseudonym(KEY, "customer-42") == expected
    assert len(expected) == 36


@given(st.text())
def test_same_value_same_key_same_token_and_keys_differ(value: str) -> None:
    """The same person gets the same token under one key, and a different one under another key."""
    token = pseudonym(KEY, value)
    assert pseudonym(KEY, value) == token
    assert pseudonym(OTHER, value) != token
    assert is_pseudonym(token)


def test_different_values_differ() -> None:
    """Near-identical identifiers get unrelated tokens."""
    assert pseudonym(KEY, "customer-42") != pseudonym(KEY, "customer-43")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("pse_" + "0" * 32, True),
        ("pse_" + "ab" * 16, True),
        ("pse_" + "AB" * 16, False),  # tokens are lowercase hex
        ("pse_" + "0" * 31, False),
        ("pse_" + "0" * 33, False),
        ("pse_" + "g" * 32, False),
        ("customer-42", False),
        ("", False),
        (42, False),
        (None, False),
    ],
)
def test_is_pseudonym(value: object, expected: bool) -> None:
    """Only exactly ``pse_`` + 32 lowercase hex digits is a pseudonym."""
    assert is_pseudonym(value) is expected


def test_pseudonymizer_replaces_the_subject_and_is_idempotent() -> None:
    """The subject becomes its token; running the Processor again returns the same entry."""
    step = Pseudonymizer(KEY, ["subject"])
    entry = inference(subject="customer-42", input={"x": 1})
    before = snapshot(entry)
    once = step(entry)
    assert once.subject == pseudonym(KEY, "customer-42")
    assert snapshot(entry) == before
    assert step(once) is once
    assert once.input is entry.input


def test_integers_become_the_token_of_their_string() -> None:
    """An id given as 42 and one given as "42" are the same person."""
    step = Pseudonymizer(KEY, ["attributes.customer_id"])
    as_int = step(inference(attributes={"customer_id": 42}))
    as_str = step(inference(attributes={"customer_id": "42"}))
    assert as_int.attributes["customer_id"] == as_str.attributes["customer_id"] == pseudonym(KEY, "42")


def test_other_values_are_left_alone() -> None:
    """Booleans, floats, None and empty strings are not identifiers: unchanged, same entry back."""
    step = Pseudonymizer(KEY, ["attributes.*"])
    entry = inference(attributes={"flag": True, "score": 0.5, "none": None, "empty": ""})
    assert step(entry) is entry


def test_nested_paths_pseudonymize_every_leaf_below() -> None:
    """``attributes.applicant`` pseudonymizes every identifier inside it, keys unchanged."""
    step = Pseudonymizer(KEY, ["attributes.applicant", "actor"])
    entry = feedback(
        attributes={"applicant": {"email": "a@x.org", "ids": [7, "c-1"]}, "keep": "k"}, actor="rev-7"
    )
    new = step(entry)
    assert new.attributes == {
        "applicant": {
            "email": pseudonym(KEY, "a@x.org"),
            "ids": [pseudonym(KEY, "7"), pseudonym(KEY, "c-1")],
        },
        "keep": "k",
    }
    assert new.actor == pseudonym(KEY, "rev-7")
    assert step(new) is new


def test_entries_without_those_paths_cost_nothing() -> None:
    """No subject: the very same entry comes back."""
    entry = inference(input={"x": "y"})
    assert Pseudonymizer(KEY)(entry) is entry


def test_sealed_entries_are_left_alone() -> None:
    """An entry sealed at the edge was pseudonymized before sealing; nothing is changed again."""
    sealed = Sealed(fields=["input"], kc=b"k" * 32, epoch="epoch:s:2026-04")
    entry = inference(subject="customer-42", sealed=sealed)
    assert Pseudonymizer(KEY)(entry) is entry


def test_a_short_key_is_refused() -> None:
    """A pseudonym key must have at least 16 bytes, or the tokens could be brute-forced."""
    with pytest.raises(UsageError, match="at least 16"):
        Pseudonymizer(b"short")
