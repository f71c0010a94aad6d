"""Paths into entries: what they match, and copy-on-write transforms that never mutate the input."""

from __future__ import annotations

from typing import Any

import pytest

from inferlog.errors import UsageError
from inferlog.privacy.paths import PAYLOAD_FIELDS, Selector, parse_path
from tests.privacy.entries import access, admin, error, feedback, inference, snapshot


def upper(text: str) -> str:
    return text.upper()


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("input", ("input",)),
        ("input.messages.*.content", ("input", "messages", "*", "content")),
        ("attributes.applicant.email", ("attributes", "applicant", "email")),
        ("subject", ("subject",)),
        ("*", ("*",)),
        ("*.email", ("*", "email")),
        ("input.messages.0", ("input", "messages", "0")),
        ("error", ("error",)),
        ("error.message", ("error",)),
    ],
)
def test_parse_path_accepts(text: str, segments: tuple[str, ...]) -> None:
    """Dotted paths split into segments; error.message is the same as error."""
    assert parse_path(text) == segments


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is not a path"),
        ("input..content", "empty segment"),
        ("input.mess*", "whole segment"),
        ("model.name", "model is not a payload field"),
        ("id", "id is not a payload field"),
        ("subject.name", "subject is a string"),
        ("error.type", "only error.message"),
        (42, "42 is not a path"),
    ],
)
def test_parse_path_refuses_with_the_reason(text: Any, reason: str) -> None:
    """A bad path is a UsageError that says what is wrong with it."""
    with pytest.raises(UsageError, match=reason):
        parse_path(text)


def test_whole_subtree_reaches_every_nested_string_and_only_strings() -> None:
    """``input`` transforms every string leaf under input, in dicts, lists and tuples; keys and numbers stay."""
    entry = inference(
        input={"name": "ann", "n": 3, "tags": ["a", {"deep": "b"}], "pair": ("c", 1.5), "none": None},
        output={"label": "keep"},
    )
    new = Selector(["input"]).map_strings(entry, upper)
    assert new.input == {
        "name": "ANN",
        "n": 3,
        "tags": ["A", {"deep": "B"}],
        "pair": ("C", 1.5),
        "none": None,
    }
    assert new.output == {"label": "keep"}


def test_wildcard_and_index_segments_pick_list_items() -> None:
    """``*`` matches every list item; a number matches that index only."""
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ho"}]
    entry = inference(input={"messages": messages})
    every = Selector(["input.messages.*.content"]).map_strings(entry, upper)
    assert every.input == {
        "messages": [{"role": "user", "content": "HI"}, {"role": "assistant", "content": "HO"}]
    }
    second = Selector(["input.messages.1.content"]).map_strings(entry, upper)
    assert second.input == {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "HO"}]
    }


def test_number_segment_also_matches_an_object_key() -> None:
    """``attributes.2024`` names the key "2024" of an object."""
    entry = inference(attributes={"2024": "x", "2025": "y"})
    assert Selector(["attributes.2024"]).map_strings(entry, upper).attributes == {"2024": "X", "2025": "y"}


def test_named_and_wildcard_paths_combine() -> None:
    """A key named by one path and matched by another's ``*`` gets both paths' subtrees."""
    entry = inference(input={"a": {"x": "1", "y": "2"}, "b": {"x": "3", "y": "4"}})
    new = Selector(["input.*.x", "input.a.y"]).map_strings(entry, lambda s: s + "!")
    assert new.input == {"a": {"x": "1!", "y": "2!"}, "b": {"x": "3!", "y": "4"}}


def test_star_means_every_payload_field_of_an_inference() -> None:
    """``*`` reaches input, output, parameters, attributes, error message, actor, subject and session_id — no metadata."""
    entry = inference(
        input="in", output=["out"], parameters={"p": "par"}, attributes={"a": "att"}, error=error("boom"),
        actor="act", subject="sub", session_id="ses", request_id="req", trace_id="tr", status="error",
    )  # fmt: skip
    new = Selector(["*"]).map_strings(entry, upper)
    assert (new.input, new.output, new.parameters, new.attributes) == (
        "IN",
        ["OUT"],
        {"p": "PAR"},
        {"a": "ATT"},
    )
    assert new.error is not None
    assert (new.error.type, new.error.message) == ("ValueError", "BOOM")
    assert (new.actor, new.subject, new.session_id) == ("ACT", "SUB", "SES")
    assert (new.id, new.system, new.model, new.request_id, new.trace_id) == (
        entry.id, entry.system, entry.model, "req", "tr",
    )  # fmt: skip


def test_star_means_every_payload_field_of_feedback_access_and_admin() -> None:
    """Feedback's label, outcome, override and comment are payload; its inference_id is not."""
    entry = feedback(label="l", outcome={"o": "o"}, override=["v"], comment="c", actor="a")
    new = Selector(["*"]).map_strings(entry, upper)
    assert (new.label, new.outcome, new.override, new.comment, new.actor) == (
        "L",
        {"o": "O"},
        ["V"],
        "C",
        "A",
    )
    assert new.inference_id == entry.inference_id
    read = access(actor="auditor", query={"subject": "s-1"}, attributes={"why": "x"})
    new_read = Selector(["*"]).map_strings(read, upper)
    assert (new_read.actor, new_read.query, new_read.attributes) == (
        "AUDITOR",
        {"subject": "s-1"},
        {"why": "X"},
    )
    change = admin(details={"who": "x"}, actor="ops")
    new_change = Selector(["*"]).map_strings(change, upper)
    assert (new_change.actor, new_change.details) == ("OPS", {"who": "x"})


def test_star_prefix_reaches_a_key_in_any_field() -> None:
    """``*.email`` names the key email of every payload field that is an object."""
    entry = inference(input={"email": "a", "x": "b"}, attributes={"email": "c"}, subject="s")
    new = Selector(["*.email"]).map_strings(entry, upper)
    assert (new.input, new.attributes, new.subject) == ({"email": "A", "x": "b"}, {"email": "C"}, "s")


def test_input_entry_is_never_mutated_and_untouched_parts_are_shared() -> None:
    """Only the containers on the way to a changed leaf are copied; everything else is the same object."""
    inner = {"keep": {"big": list(range(100))}, "change": {"name": "ann"}}
    entry = inference(input=inner, output={"o": "x"}, attributes={"a": "b"})
    before = snapshot(entry)
    new = Selector(["input.change.name"]).map_strings(entry, upper)
    assert snapshot(entry) == before
    assert entry.input is inner
    assert inner["change"] == {"name": "ann"}
    assert new.input == {"keep": {"big": list(range(100))}, "change": {"name": "ANN"}}
    assert new.input["keep"] is inner["keep"]
    assert new.output is entry.output
    assert new.attributes is entry.attributes


def test_nothing_to_change_returns_the_same_entry() -> None:
    """No matching path, or a transform that changes nothing: the very same object comes back."""
    entry = inference(input={"n": 1}, output={"label": "x"})
    assert Selector(["attributes.applicant.email"]).map_strings(entry, upper) is entry
    assert Selector(["input"]).map_strings(entry, upper) is entry  # no strings under input
    assert Selector(["*"]).map_strings(entry, lambda s: s) is entry
    assert Selector([]).map_strings(entry, upper) is entry
    assert not Selector([])


def test_paths_deeper_than_the_data_match_nothing() -> None:
    """A path that goes below a scalar, or into a missing key or index, changes nothing."""
    entry = inference(input={"a": "x", "list": ["y"]})
    assert (
        Selector(["input.a.b", "input.missing", "input.list.3", "input.list.x"]).map_strings(entry, upper)
        is entry
    )


def test_map_values_sees_every_scalar() -> None:
    """map_values hands numbers, booleans and None to the transform too (map_strings does not)."""
    entry = inference(input={"s": "x", "i": 7, "f": 1.5, "b": True, "n": None})
    seen: list[Any] = []

    def record(value: Any) -> Any:
        seen.append(value)
        return value

    assert Selector(["input"]).map_values(entry, record) is entry
    assert sorted(map(repr, seen)) == sorted(map(repr, ["x", 7, 1.5, True, None]))


def test_error_message_only_and_missing_error() -> None:
    """``error`` changes only the message; an entry without an error is left alone."""
    failed = inference(error=error("user ann failed"))
    new = Selector(["error"]).map_strings(failed, upper)
    assert new.error is not None
    assert (new.error.type, new.error.message) == ("ValueError", "USER ANN FAILED")
    assert failed.error is not None
    assert failed.error.message == "user ann failed"
    ok = inference()
    assert Selector(["error"]).map_strings(ok, upper) is ok


def test_payload_fields_are_the_documented_ones() -> None:
    """The list behind ``*`` is exactly the payload fields the brief and the docs name."""
    assert PAYLOAD_FIELDS == (
        "input", "output", "parameters", "attributes", "error", "label", "outcome", "override",
        "comment", "actor", "subject", "session_id",
    )  # fmt: skip
