"""Which reads are on a pack's access trail: those whose query could have returned the pack's entries."""

from __future__ import annotations

from typing import Any

import pytest

from inferlog.evidence.select import Selection, could_have_read
from tests.evidence.conftest import SINCE, UNTIL

SELECTION = Selection("credit", SINCE, UNTIL, subject="pse_alice")


@pytest.mark.parametrize(
    ("query", "read"),
    [
        ({"system": "credit"}, True),
        ({}, True),  # a read of every system
        ({"subject": "pse_alice"}, True),
        ({"subject": "pse_bob"}, False),
        ({"model": "scorer"}, True),
        ({"model": "other"}, False),
        ({"system": "chat"}, False),
        ({"systems": ["credit", "chat"]}, True),
        ({"systems": ["chat"]}, False),
        ({"kind": "feedback"}, True),
        ({"kind": "admin"}, False),
        ({"kinds": ["access", "admin"]}, False),
        ({"until": "2026-02-01T00:00:00Z"}, False),
        ({"until": "2026-03-01T00:00:00Z"}, False),  # until is exclusive: ends where the period starts
        ({"until": "2026-03-01T00:00:01Z"}, True),
        ({"since": "2026-06-01T00:00:00Z"}, False),
        ({"since": "2026-05-31T23:59:59Z"}, True),
        ({"since": "not a time"}, True),  # what cannot be read narrows nothing
    ],
)
def test_could_have_read(query: dict[str, Any], read: bool) -> None:
    """A read is on the trail unless its system, subject, model, kinds or time range rule the entries out."""
    assert could_have_read(query, SELECTION, {"scorer"}) is read
