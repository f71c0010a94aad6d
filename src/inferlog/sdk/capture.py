"""Capturing calls as records: the ``@log.inference`` decorator and the ``log.trace`` context manager.

Arguments become ``input`` (the argument itself when there is exactly one, else a mapping of parameter
names to values), the return value becomes ``output``, wall time becomes ``latency_ms``. An exception is
recorded with its type and message, then re-raised unchanged.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from inferlog.record.model import ErrorInfo, Model

if TYPE_CHECKING:
    from inferlog.sdk.client import Log

F = TypeVar("F", bound=Callable[..., Any])
_perf = time.perf_counter


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
            log.record(
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
        self._log.record(
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
