"""A reverse proxy in front of an Open Inference Protocol server that logs every infer call."""

from __future__ import annotations

from inferlog.proxy.app import create_proxy

__all__ = ["create_proxy"]
