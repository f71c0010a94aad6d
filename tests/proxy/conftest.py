"""The proxy tests run against a real MLServer too (see tests/fix_mlserver.py)."""

from tests.fix_mlserver import mlserver, mlserver_python

__all__ = ["mlserver", "mlserver_python"]
