"""The OTLP tests use the server fixtures of tests/server and the fake OpenAI API."""

from tests.otlp.fake_openai import fake_openai
from tests.server.conftest import server, sqlite_server

__all__ = ["fake_openai", "server", "sqlite_server"]
