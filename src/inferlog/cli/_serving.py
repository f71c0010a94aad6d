"""What the commands that listen on HTTP share (``serve``, ``proxy``): ``--host``/``--port``, and uvicorn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def listen_options(port: int) -> Callable[[F], F]:
    """``--host`` (loopback unless told) and ``--port`` (``port`` unless told), as keyword arguments."""

    def decorate(func: F) -> F:
        func = click.option("--port", default=port, show_default=True, type=click.IntRange(1, 65535))(func)
        return click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")(
            func
        )

    return decorate


def run_app(app: Any, host: str, port: int, **options: Any) -> None:
    """Serve an ASGI app with uvicorn until it is stopped; ``options`` go to ``uvicorn.run``.

    uvicorn comes with the ``server`` extra, so it is imported only by the commands that listen.
    """
    import uvicorn

    uvicorn.run(app, host=host, port=port, **options)
