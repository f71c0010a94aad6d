"""The Seldon protobuf tests use MLServer's own generated OIP classes as their oracle (tests/fix_mlserver.py)."""

from tests.fix_mlserver import mlserver_python

__all__ = ["mlserver_python"]
