"""What joining the two halves of one inference means for every sink that receives them apart.

KServe's logger and Seldon's Kafka topics deliver a request and its response as separate messages;
each sink's ``join`` reads its own format, and these rules are the ones they share: which half names
the inference, when it happened and how long it took, and how a record made from one half says so.
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

H = TypeVar("H")


def first_half(request: H | None, response: H | None) -> H:
    """The half that names the inference: its request if that came, else its response."""
    first = request if request is not None else response
    if first is None:
        raise ValueError("join needs at least one half")
    return first


def timing(
    sent: dt.datetime | None, answered: dt.datetime | None, now: dt.datetime | None
) -> tuple[dt.datetime, float | None]:
    """When the inference happened (request, else response, else ``now``) and its latency in ms.

    The latency is known only with both times, and never negative (the two come from different clocks).
    """
    latency = None
    if sent is not None and answered is not None:
        latency = max(0.0, (answered - sent).total_seconds() * 1000)
    return sent or answered or now or dt.datetime.now(dt.UTC), latency


def lone_half(request: object | None, response: object | None) -> str | None:
    """``"request"`` or ``"response"`` for a record made from that half alone, else ``None``."""
    if request is None or response is None:
        return "request" if request is not None else "response"
    return None
