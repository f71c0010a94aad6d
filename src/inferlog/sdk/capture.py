"""Capturing calls as records: the ``@log.inference`` decorator and the ``log.trace`` context manager.

Arguments become ``input`` (the argument itself when there is exactly one, else a mapping of parameter
names to values), the return value becomes ``output``, wall time becomes ``latency_ms``. An exception is
recorded with its type and message, then re-raised unchanged.

Logging never breaks the function it watches (unless the Log is ``fail_closed``): a value that cannot be
recorded as JSON is recorded as its ``repr`` with ``attributes.inferlog_not_json`` saying which field and
why (see :func:`record_for_caller`), and the function's result is returned as if nothing happened.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from inferlog.errors import RecordInvalid
from inferlog.record.model import ErrorInfo, Model

if TYPE_CHECKING:
    from inferlog.sdk.client import Log

F = TypeVar("F", bound=Callable[..., Any])
_perf = time.perf_counter
_REPR_LIMIT = 10_000  # characters of a value's repr kept in its place
_FREE_FORM = ("input", "output", "parameters", "attributes")

log_ = logging.getLogger("inferlog")


def record_for_caller(log: Log, **fields: Any) -> str | None:
    """``log.record(**fields)`` for capture code that wraps a user's function: it never raises into it.

    A field the log refuses (a return value that is not JSON, a value nested too deep) is recorded as
    its ``repr`` (cut at 10,000 characters), with ``attributes.inferlog_not_json = {"field", "reason"}``;
    if even that is refused, an error record says so. Only with ``fail_closed=True`` does the refusal
    reach the caller (who asked for no unlogged predictions). Returns the record's id, or None if nothing
    could be recorded (counted in ``counters.dropped`` and logged).
    """
    try:
        return log.record(**fields)
    except RecordInvalid as exc:
        if log.fail_closed:
            raise
        refusal = exc
    field = (refusal.field or "").split(".")[0].split("[")[0]
    note = {"field": field or None, "reason": refusal.reason}
    if field in _FREE_FORM and field in fields:
        attributes = {} if field == "attributes" else dict(fields.get("attributes") or {})
        fields[field] = (
            _text_of(fields[field]) if field in ("input", "output") else {"repr": _text_of(fields[field])}
        )
        fields["attributes"] = attributes | {"inferlog_not_json": note}
        try:
            return log.record(**fields)
        except RecordInvalid:
            pass
    fields.update(input=None, output=None, parameters=None, attributes={"inferlog_not_json": note})
    if fields.get("error") is None:  # the function's own exception, if any, is the better story
        fields["error"] = ErrorInfo("RecordInvalid", str(refusal))
    try:
        return log.record(**fields)
    except RecordInvalid as exc:
        log.counters.dropped += 1
        log_.error("an inference could not be recorded at all (the function's result was returned): %s", exc)
        return None


def _text_of(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ must not break the caller either
        text = f"<{type(value).__name__}: repr failed: {exc}>"
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 1] + "…"


def _input_of(names: tuple[str, ...], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) == 1 and not kwargs:
        return args[0]
    if not args and len(kwargs) == 1:
        return next(iter(kwargs.values()))
    data = dict(zip(names, args, strict=False))
    for index in range(len(names), len(args)):
        data[f"arg{index}"] = args[index]
    data.update(kwargs)
    return data


def decorate(log: Log, model: Model, fixed: dict[str, Any]) -> Callable[[F], F]:
    def decorator(func: F) -> F:
        params = [
            p
            for p in inspect.signature(func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        names = tuple(p.name for p in params)
        skip_self = bool(names) and names[0] in ("self", "cls")
        if skip_self:
            names = names[1:]

        def finish(args: tuple[Any, ...], kwargs: dict[str, Any], start: float, **outcome: Any) -> None:
            record_for_caller(
                log,
                model=model,
                input=_input_of(names, args[1:] if skip_self else args, kwargs),
                latency_ms=(_perf() - start) * 1000.0,
                **outcome,
                **fixed,
            )

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                start = _perf()
                try:
                    result = await func(*args, **kwargs)
                except Exception as exc:
                    finish(args, kwargs, start, error=exc)
                    raise
                finish(args, kwargs, start, output=result)
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = _perf()
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                finish(args, kwargs, start, error=exc)
                raise
            finish(args, kwargs, start, output=result)
            return result

        return wrapper  # type: ignore[return-value]

    return decorator


class Call:
    """One inference recorded around a block: set ``output`` (and anything else) inside it.

    ``call.id`` is the record's id, known before the block runs, so it can be returned to a client
    or put in a response header.
    """

    def __init__(self, log: Log, model: Model, fields: dict[str, Any]) -> None:
        from inferlog.record.ids import uuid7

        self._log = log
        self.model = model
        self.id = uuid7()
        self.input: Any = fields.pop("input", None)
        self.output: Any = fields.pop("output", None)
        self.attributes: dict[str, Any] = dict(fields.pop("attributes", None) or {})
        self.parameters: dict[str, Any] = dict(fields.pop("parameters", None) or {})
        self.error: ErrorInfo | None = None
        self._given_ts = fields.pop("ts", None)
        self.fields = fields
        self._start = 0.0

    def __enter__(self) -> Call:
        import datetime as dt

        self._ts = self._given_ts or dt.datetime.now(dt.UTC)
        self._start = _perf()
        return self

    async def __aenter__(self) -> Call:
        return self.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        latency = (_perf() - self._start) * 1000.0
        error: ErrorInfo | BaseException | None = self.error
        if exc is not None and isinstance(exc, Exception):
            error = exc
        record_for_caller(
            self._log,
            id=self.id,
            ts=self._ts,
            model=self.model,
            input=self.input,
            output=self.output,
            latency_ms=latency,
            error=error,
            attributes=self.attributes,
            parameters=self.parameters,
            **self.fields,
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
