"""HTTP-only errors (the rest of the tree is in inferlog.errors)."""

from __future__ import annotations

from inferlog.errors import InferlogError


class PayloadTooLarge(InferlogError):
    """The request body is over the server's limit (HTTP 413)."""


class UnsupportedMediaType(InferlogError):
    """The body is in an encoding this server cannot read (HTTP 415)."""
