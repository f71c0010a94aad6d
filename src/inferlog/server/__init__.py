"""The HTTP face: FastAPI app (OpenAPI at /docs), API keys and roles, audited reads."""

from inferlog.server.app import create_app

__all__ = ["create_app"]
