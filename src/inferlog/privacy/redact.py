"""Redaction: find personal data in an entry's strings and replace it with a typed mask.

Built-in detectors find e-mail addresses, phone numbers, IBANs and payment card numbers; a policy
adds its own regexes by name. Each find becomes ``[REDACTED:<detector>]``, so a reader still sees
*that* something was there and what kind of thing it was, and ``attributes["redacted"]`` counts them.

Why the checksums and the phone heuristics: a redactor that eats dates, amounts, versions and ids
destroys the log's value as evidence, so candidates are validated (ISO 7064 mod 97 for IBANs, Luhn
for cards, shape rules for phone numbers) before anything is replaced.

Why masks are never scanned: a custom regex could match a mask's own text; detectors only ever see
the text between masks, which is what makes redaction idempotent (redacting twice = once), so the
same Redactor can run in the SDK and again at the store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from inferlog.errors import UsageError
from inferlog.privacy.paths import E, Selector

MASK_PREFIX = "[REDACTED:"
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_MASK = re.compile(r"(\[REDACTED:[A-Za-z][A-Za-z0-9_-]*\])")
_DIGIT = re.compile(r"\d")
_NUMBER = re.compile(r"\d(?:[ .\-()]{0,3}\d){6}")
_MAX_ROUNDS = 64  # far beyond what any real entry needs; see Redactor.__call__


def mask(name: str) -> str:
    """The text that replaces what detector ``name`` found."""
    return f"{MASK_PREFIX}{name}]"


@dataclass(frozen=True)
class RedactRule:
    """Which detectors run on which paths (``*`` = every payload field)."""

    detectors: tuple[str, ...]
    paths: tuple[str, ...] = ("*",)


@dataclass(frozen=True)
class Detector:
    """A named regex plus an optional check of each match, and the cheapest test that can skip it.

    ``check(match)`` says how many characters from the match's start are a real find (0: none, the
    match was a lookalike); without it every match is a find. ``needs`` is what every find contains
    (``"@"``; ``"digit"``; ``"number"``, seven digits with at most three separators between each)
    and ``min_length`` the shortest find: strings failing either are skipped without the regex.
    """

    name: str
    pattern: re.Pattern[str]
    check: Callable[[re.Match[str]], int] | None = None
    needs: Literal["@", "digit", "number"] | None = None
    min_length: int = 1
    mask: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", mask(self.name))


# -- checksums --------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number passes."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        d = ord(char) - 48
        if position % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """ISO 13616 / ISO 7064 mod 97-10: the rearranged IBAN, letters as 10..35, is 1 modulo 97."""
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


# -- built-in detectors -----------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.%+\-])[\w.%+\-]+@(?:[\w\-]+\.)+[A-Za-z]{2,63}(?![\w\-])")

_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?(?![A-Za-z0-9])"
)

_CARD = re.compile(
    r"(?<![\w.+\-])"
    r"(?:\d{13,19}|\d{4}(?P<sep>[ \-])\d{4,6}(?:(?P=sep)\d{3,5}){1,3})"
    r"(?![\w])(?![.,\-]\d)"
)

# A phone candidate: an optional "+", then digit groups joined by one space, dot or dash, or by
# parentheses: "+49 30 1234567", "(555) 123-4567", "+44 (0)20 7946 0958". It may not be glued to a
# word, a number, a decimal point or a time ("12:30"), so dates, times, UUIDs and decimals do not
# offer partial candidates; _phone_ok then judges the whole.
_PHONE = re.compile(
    r"(?<![\w.+/\-])(?<!\d[:,])"
    r"(?=\+?\(?\d(?:[ .\-()]{0,3}\d){6})"  # at least 7 digits ahead: most numbers fail here, in C
    r"\+?(?:\(\d{1,5}\)|\d+)"
    r"(?:(?:[ .\-]|(?<=\))|(?=\())(?:\(\d{1,5}\)|\d+))*"
    r"(?![\w(+])(?![.,:/\-]\w)"
)
_GROUP = re.compile(r"\(\d+\)|\d+")
_SEPARATOR = re.compile(r"[ .\-]")
_IBAN_HEAD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4})* ?$")


def _phone(match: re.Match[str]) -> int:
    # "call 030 1234567 3 times": a number after a space may be cut off again (never after a dash
    # or a dot, which would turn part of a UUID or a date into a phone).
    head = match.string[max(0, match.start() - 48) : match.start()]
    if _IBAN_HEAD.search(head) is not None:
        return 0  # GB82 WEST 1234 5698 7654 32: the tail of an IBAN
    return _longest(match.group(), _phone_ok, " ")


def _phone_ok(text: str) -> bool:
    """Whether a candidate is shaped like a phone number rather than a date, amount, id or version."""
    parts = _GROUP.findall(text)
    tokens = [p.strip("()") for p in parts]
    bare = [len(p) for p in parts if p[0] != "("]
    separators = _SEPARATOR.findall(text)
    groups = [len(t) for t in tokens]
    digits = sum(groups)
    if separators.count(".") == 1 and separators[-1] == ".":
        return False  # 1234567.89, 12 345 678.90: a decimal
    if text.startswith("+"):
        trunk = 1 if "(0)" in text else 0  # +44 (0)20 ...: the (0) is not dialled from abroad
        return 7 <= digits - trunk <= 15
    if not 7 <= digits <= 12 or not (separators or "(" in text):
        return False  # too short or long for a national number, or a bare number
    if any(n < 2 for n in bare):
        return False  # 10.0.19041.1, 1 234 567: versions and amounts have one-digit groups
    if len(groups) == 3 and len(set(separators)) == 1 and _date_like(groups):
        return False  # 2026-04-01, 01.04.2026: a date
    if len(groups) == 2 and "(" not in text and not tokens[0].startswith("0") and groups != [3, 4]:
        return False  # 1990-2020, 1234 5678: a range or a pair of numbers
    if set(separators) == {"."}:
        if len(groups) == 4 and max(groups) <= 3:
            return False  # 192.168.100.200: an IPv4 address
        if len(groups) < 4 and groups[-1] < 4:
            return False  # 10.11.123: a version
    if (
        len(groups) >= 3
        and len(set(separators)) == 1
        and not tokens[0].startswith("0")
        and groups[0] <= 3
        and all(n == 3 for n in groups[1:])
    ):
        return False  # 12 345 678, 1.234.567: thousands
    return not (len(groups) >= 3 and all(n == 4 for n in groups[:-1]))  # 1234 5678 9012: IBAN, card


def _date_like(groups: list[int]) -> bool:
    return (groups[0] == 4 and groups[1] <= 2 and groups[2] <= 2) or (
        groups[0] <= 2 and groups[1] <= 2 and groups[2] == 4
    )


def _longest(text: str, ok: Callable[[str], bool], separators: str = " -") -> int:
    """The length of the longest prefix of ``text`` that passes ``ok``, cut only at ``separators``.

    Grouped numbers swallow a following group ("DE89 ... 7034 Test", a card number and a year); the
    checksum then fails on the whole but holds on the part that is the real number.
    """
    end = len(text)
    while end > 0:
        if ok(text[:end]):
            return end
        end = max(text.rfind(sep, 0, end) for sep in separators)
    return 0


def _card_number_ok(text: str) -> bool:
    digits = text.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _card(match: re.Match[str]) -> int:
    return _longest(match.group(), _card_number_ok)


def _iban(match: re.Match[str]) -> int:
    return _longest(match.group(), iban_ok)


BUILTIN_DETECTORS: dict[str, Detector] = {
    "iban": Detector("iban", _IBAN, _iban, needs="digit", min_length=15),
    "card": Detector("card", _CARD, _card, needs="number", min_length=13),
    "email": Detector("email", _EMAIL, needs="@", min_length=6),
    "phone": Detector("phone", _PHONE, _phone, needs="number", min_length=7),
}
"""In the order they run: the checksum-validated ones first, so a phone never eats an IBAN's tail."""


def custom_detector(name: str, pattern: str | re.Pattern[str]) -> Detector:
    """A detector from a policy's ``[detectors]`` table; refuses names a mask could not carry."""
    if not NAME_PATTERN.fullmatch(name) or name in BUILTIN_DETECTORS:
        raise UsageError(
            f"{name!r} cannot name a detector: use letters, digits, _ and -, starting with a letter,"
            f" and none of {', '.join(BUILTIN_DETECTORS)}"
        )
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    return Detector(name, compiled)


# -- the text and the entry -------------------------------------------------------------------


def _run(detector: Detector, text: str, counts: dict[str, int]) -> str:
    found = 0
    check = detector.check
    replacement = detector.mask

    def replace(match: re.Match[str]) -> str:
        nonlocal found
        text = match.group()
        size = len(text) if check is None else check(match)
        if size <= 0:
            return text  # a lookalike (or an empty match, which would find nothing)
        found += 1
        return replacement + text[size:]

    if detector.pattern.search(text) is None:
        return text  # the common case: not even a candidate
    if MASK_PREFIX in text:  # never look into a mask: scan the text between masks only
        parts = _MASK.split(text)
        for i in range(0, len(parts), 2):
            if parts[i]:
                parts[i] = detector.pattern.sub(replace, parts[i])
        new = "".join(parts)
    else:
        new = detector.pattern.sub(replace, text)
    if not found:
        return text
    counts[detector.name] = counts.get(detector.name, 0) + found
    return new


def redact_text(text: str, detectors: Sequence[Detector], counts: dict[str, int]) -> str:
    """``text`` with every find of ``detectors`` masked (the same object if nothing was found)."""
    digit: bool | None = None  # each cheap test at most once per text, and only if needed
    number: bool | None = None
    for detector in detectors:
        needs = detector.needs
        if len(text) < detector.min_length:
            continue
        if needs is not None:
            if needs == "@":
                if "@" not in text:
                    continue
            else:
                if digit is None:
                    digit = _DIGIT.search(text) is not None
                if not digit:
                    continue
                if needs == "number":
                    if number is None:
                        number = _NUMBER.search(text) is not None
                    if not number:
                        continue
        text = _run(detector, text, counts)
    return text


class Redactor:
    """The redaction Processor: runs each rule's detectors on the strings under the rule's paths.

    Custom detectors run before the built-ins (they are what the policy's author knows best), and
    the built-ins in the order iban, card, email, phone. When anything was found, the entry's
    ``attributes["redacted"]`` gains the counts per detector; an entry with nothing to find, or one
    that is already sealed (encrypted after redaction, at the edge), comes back as the same object.
    """

    def __init__(
        self,
        rules: Iterable[RedactRule],
        custom_detectors: Mapping[str, str | re.Pattern[str] | Detector] | None = None,
    ) -> None:
        custom: dict[str, Detector] = {}
        for name, pattern in (custom_detectors or {}).items():
            custom[name] = pattern if isinstance(pattern, Detector) else custom_detector(name, pattern)
        order = [*custom, *BUILTIN_DETECTORS]
        known = {**custom, **BUILTIN_DETECTORS}
        self.rules = tuple(rules)
        self._steps: list[tuple[Selector, tuple[Detector, ...]]] = []
        for rule in self.rules:
            unknown = [name for name in rule.detectors if name not in known]
            if unknown:
                raise UsageError(f"unknown detector {unknown[0]!r} (known: {', '.join(sorted(known))})")
            chosen = tuple(known[name] for name in order if name in rule.detectors)
            selector = Selector(rule.paths)
            if chosen and selector:
                self._steps.append((selector, chosen))

    def __call__(self, entry: E) -> E:
        if not self._steps or getattr(entry, "sealed", None) is not None:
            return entry  # a sealed entry was redacted before it was sealed; never touch ciphertext
        counts: dict[str, int] = {}
        # The result must be a fixed point for redaction to be idempotent: a mask placed by one
        # detector changes the context the others see. _Pass repeats each string until nothing
        # changes; with several rules, the rules are repeated until none changes the entry.
        for _ in range(_MAX_ROUNDS):
            before = entry
            for selector, detectors in self._steps:
                entry = selector.map_strings(entry, _Pass(detectors, counts))
            if entry is before or len(self._steps) == 1:
                break
        if not counts:
            return entry
        attributes: dict[str, Any] = dict(entry.attributes)
        previous = attributes.get("redacted")
        merged = dict(previous) if isinstance(previous, dict) else {}
        for name, n in counts.items():
            old = merged.get(name)
            merged[name] = (old if isinstance(old, int) and not isinstance(old, bool) else 0) + n
        attributes["redacted"] = merged
        return msgspec.structs.replace(entry, attributes=attributes)


class _Pass:
    """One rule's detectors bound to the counts of one call (a callable for Selector.map_strings)."""

    __slots__ = ("counts", "detectors")

    def __init__(self, detectors: tuple[Detector, ...], counts: dict[str, int]) -> None:
        self.detectors = detectors
        self.counts = counts

    def __call__(self, text: str) -> str:
        # Every round that changes something turns unmasked text into masks, so this ends; a real
        # string needs one round plus the one that finds nothing.
        new = redact_text(text, self.detectors, self.counts)
        rounds = 1
        while new is not text and rounds < _MAX_ROUNDS:
            text, new = new, redact_text(new, self.detectors, self.counts)
            rounds += 1
        return new
