"""A policy cannot name a path below ``biometric`` (metadata): refused when it loads, never silently skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlog.errors import UsageError
from inferlog.privacy.policy import load_policy


@pytest.mark.parametrize("rule", ["encrypt", "pseudonymize"])
def test_a_biometric_path_is_refused_naming_it(tmp_path: Path, rule: str) -> None:
    """``encrypt``/``pseudonymize = ["biometric.match"]`` fails to load, naming the path, so no one believes it sealed."""
    path = tmp_path / "inferlog.toml"
    path.write_text(
        f'[keystore]\npath = "keys.db"\n[defaults]\n{rule} = ["biometric.match"]\n', encoding="utf-8"
    )
    with pytest.raises(UsageError, match=r"biometric\.match.*not a payload field"):
        load_policy(path)
