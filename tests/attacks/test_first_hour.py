"""A new user's first hour, played as the user: every mistake they make gets one clear line, not a trap.

Each test here failed on the code before its fix: errors that named an internal temp file, a WORM
folder silently created, a missing policy file ignored by some commands, ``--db`` refused where users
type it, a reader that answered dicts where the store answers entries, a pool leaked by a failing
``inferlog.open``, and a proxy whose event loop stalled behind one blocked ``record()``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

import inferlog
import inferlog.server
from inferlog.apikeys import create_key
from inferlog.cli import cli
from inferlog.errors import InferlogError
from inferlog.server import create_app
from inferlog.store.sqlite import SQLiteStore
from tests.fix_postgres import admin_connect
from tests.fix_server import ServerProcess, run_cli

STATIC = Path(inferlog.server.__file__).parent / "static"  # the package's own copy of Swagger UI


@pytest.fixture
def small_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A log of five inferences in tmp_path (the working directory), with a signing key beside it."""
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with inferlog.open(url, system="s", spool_dir=tmp_path / "spool") as log:
        for i in range(5):
            log.record(model=inferlog.Model("m", "1"), input={"i": i}, output=i)
    made = CliRunner().invoke(cli, ["keys", "init-signer", "--origin", "first.hour/log"])
    assert made.exit_code == 0, made.output
    return url


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _one_error_line(result: Result) -> str:
    """The single error line a failed command printed (asserting there is exactly one, no traceback)."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_verify_checkpoint_with_a_missing_folder_names_the_users_path(small_log: str, tmp_path: Path) -> None:
    """`verify checkpoint --trusted` under a missing folder names that folder, not an internal temp file."""
    assert _run("--db", small_log, "checkpoint").exit_code == 0
    trusted = tmp_path / "no-such-dir" / "trusted.note"
    line = _one_error_line(_run("--db", small_log, "verify", "checkpoint", "--trusted", str(trusted)))
    assert str(tmp_path / "no-such-dir") in line
    assert ".tmp" not in line


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_to_a_missing_folder_names_the_users_path(small_log: str, tmp_path: Path, fmt: str) -> None:
    """`export --output` into a missing folder fails with one line naming it, not an internal temp file."""
    output = tmp_path / "no" / "such" / f"x.{fmt}"
    line = _one_error_line(_run("--db", small_log, "export", "--format", fmt, "--output", str(output)))
    assert str(tmp_path / "no" / "such") in line
    assert ".tmp" not in line


def test_checkpoint_to_a_missing_folder_refuses_and_creates_nothing(small_log: str, tmp_path: Path) -> None:
    """`checkpoint --to` a folder that is not there (an unmounted WORM share) refuses and creates nothing."""
    worm = tmp_path / "mnt" / "worm" / "checkpoints"
    line = _one_error_line(_run("--db", small_log, "checkpoint", "--to", str(worm)))
    assert str(worm) in line
    assert not (tmp_path / "mnt").exists()


def test_db_given_as_a_file_name_suggests_the_url(small_log: str) -> None:
    """`--db log.db` (a file name, not a URL) says: did you mean sqlite:///log.db?"""
    line = _one_error_line(_run("--db", "log.db", "stats"))
    assert "did you mean sqlite:///log.db" in line


@pytest.mark.parametrize(
    "command", [["stats"], ["query"], ["export", "--output", "x.jsonl"], ["verify"], ["tail", "-n", "1"]]
)
def test_a_missing_config_file_fails_every_command(
    small_log: str, tmp_path: Path, command: list[str]
) -> None:
    """`--config` naming a missing file fails every command the same way, naming the file."""
    missing = str(tmp_path / "missing.toml")
    line = _one_error_line(_run("--db", small_log, "--config", missing, *command))
    assert missing in line


@pytest.mark.parametrize(
    "command", [["stats"], ["query"], ["export", "--output", "x.jsonl"], ["verify"], ["tail", "-n", "1"]]
)
def test_a_config_file_that_does_not_parse_fails_every_command(
    small_log: str, tmp_path: Path, command: list[str]
) -> None:
    """`--config` naming a file that is not a valid policy fails every command alike (stats exited 0), naming it."""
    broken = tmp_path / "broken.toml"
    broken.write_text("garbage [[[\n")
    line = _one_error_line(_run("--db", small_log, "--config", str(broken), *command))
    assert "broken.toml" in line
    assert "TOML" in line


def test_a_key_store_in_a_missing_folder_is_refused_and_creates_nothing(
    small_log: str, tmp_path: Path
) -> None:
    """A policy whose key store lies in a folder that is not there (an unmounted volume) refuses, creating nothing, from the CLI and the SDK."""
    volume = tmp_path / "mnt" / "secrets"
    config = tmp_path / "inferlog.toml"
    config.write_text(f'[keystore]\npath = "{volume / "keys.db"}"\n')
    line = _one_error_line(_run("--db", small_log, "--config", str(config), "query"))
    assert str(volume) in line
    with pytest.raises(InferlogError, match="create it"):
        inferlog.open(small_log, system="s", config=config, spool_dir=tmp_path / "spool")
    assert not (tmp_path / "mnt").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["stats"],
        ["query", "--limit", "1"],
        ["verify", "--skip-signatures"],  # a key, no checkpoint yet: unsigned on purpose
        ["checkpoint"],
        ["keys", "list"],
        ["retention", "plan"],
    ],
)
def test_db_is_accepted_after_the_subcommand(small_log: str, tmp_path: Path, command: list[str]) -> None:
    """`inferlog <command> --db URL` works as users type it, and overrides the group's --db."""
    other = f"sqlite:///{tmp_path / 'absent.db'}"
    result = _run("--db", other, *command, "--db", small_log)
    assert result.exit_code == 0, result.output


def test_serve_accepts_db_after_the_subcommand() -> None:
    """`inferlog serve --db URL` is an accepted option (it said "No such option" before)."""
    result = _run("serve", "--db", "sqlite:///x.db", "--help")
    assert result.exit_code == 0, result.output
    assert "--db" in result.output


# -- the HTTP server: API key messages, the docs page offline -------------------------------------


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """An in-process server over a SQLite file, with an ingest key and an auditor key."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'server.db'}")
    keys = {role: create_key(store, role, ["credit"], f"{role} key")[0] for role in ("ingest", "reader")}
    with TestClient(create_app(store)) as client:
        yield client, keys
    store.close()


def test_a_key_with_a_wrong_secret_is_invalid_not_malformed(
    app_client: tuple[TestClient, dict[str, str]],
) -> None:
    """A well-formed key whose secret is wrong is answered "invalid API key", never "malformed"."""
    client, keys = app_client
    kid_part, secret, check = keys["reader"].rsplit("_", 2)
    wrong = f"{kid_part}_{'x' if secret[0] != 'x' else 'y'}{secret[1:]}_{check}"
    answer = client.get("/v1/records", params={"purpose": "t"}, headers={"Authorization": f"Bearer {wrong}"})
    assert answer.status_code == 401
    message = answer.json()["message"]
    assert message.startswith("invalid API key")
    assert "malformed" not in message


def test_role_messages_use_the_right_article(app_client: tuple[TestClient, dict[str, str]]) -> None:
    """An ingest key that tries to read is told "an ingest key cannot do this", not "a ingest key"."""
    client, keys = app_client
    answer = client.get(
        "/v1/records", params={"purpose": "t"}, headers={"Authorization": f"Bearer {keys['ingest']}"}
    )
    assert answer.status_code == 403
    assert answer.json()["message"].startswith("an ingest key cannot do this")


def test_docs_page_loads_nothing_from_another_host(app_client: tuple[TestClient, dict[str, str]]) -> None:
    """/docs references only this server's own paths (it works offline); /redoc is not served from a CDN."""
    client, _ = app_client
    page = client.get("/docs")
    assert page.status_code == 200
    referenced = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert referenced
    assert all(url.startswith("/") and not url.startswith("//") for url in referenced), referenced
    assert "cdn" not in page.text.lower()
    assert client.get("/redoc").status_code == 404


def test_docs_assets_are_the_recorded_swagger_ui_files(app_client: tuple[TestClient, dict[str, str]]) -> None:
    """Every asset /docs uses is served by the package and matches the sha256 recorded in SOURCES.json."""
    client, _ = app_client
    record = json.loads((STATIC / "SOURCES.json").read_text())
    assert record["package"] == "swagger-ui-dist"
    page = client.get("/docs").text
    for name, digest in record["sha256"].items():
        assert f"/static/{name}" in page
        served = client.get(f"/static/{name}")
        assert served.status_code == 200
        assert hashlib.sha256(served.content).hexdigest() == digest, name


# -- the Python API: one entry type, however it was read -----------------------------------------


def test_reads_through_a_server_answer_the_same_type_as_reads_from_the_store(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    """`log.reader.get(id, purpose=...)` answers a StoredEntry like `log.get(id)`, so `.output` works on both."""
    ingest = run_cli(
        "--db", server_process.db, "keys", "create", "--role", "ingest", "--system", "s", "--name", "m"
    ).strip()
    reader = run_cli(
        "--db", server_process.db, "keys", "create", "--role", "reader", "--system", "s", "--name", "r"
    ).strip()
    with inferlog.open(server_process.url, api_key=ingest, system="s", spool_dir=tmp_path / "w") as log:
        rid = log.record(model=inferlog.Model("m", "1"), input={"x": 1}, output={"score": 0.81})
        assert log.flush(timeout=30)
    with inferlog.open(server_process.db, system="s", spool_dir=tmp_path / "local") as local:
        direct = local.get(rid)
    with inferlog.open(server_process.url, api_key=reader, system="s", spool_dir=tmp_path / "r") as remote:
        assert remote.reader is not None
        served = remote.reader.get(rid, purpose="first hour")
        page = remote.reader.query(purpose="first hour", kind="inference")
    assert direct is not None
    assert served is not None
    assert type(served) is type(direct)
    assert served.output == direct.output == {"score": 0.81}
    assert served.entry == direct.entry
    assert (served.seq, served.logged_at) == (direct.seq, direct.logged_at)
    assert [stored.id for stored in page] == [rid]
    assert page.entries[0].entry == direct.entry


def _connections(database: str) -> int:
    with admin_connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    assert row is not None
    return int(str(row[0]))


@pytest.mark.parametrize(
    "mistake",
    [
        pytest.param({}, id="no-spool-dir"),  # PostgreSQL has no file to put the spool beside
        pytest.param({"signer_key": "/no/such/signer.key"}, id="missing-signer-key"),
    ],
)
def test_a_failing_open_closes_its_postgres_pool(pg_url: str, mistake: dict[str, Any]) -> None:
    """When `inferlog.open` raises after it opened the store, the store's connections are all closed.

    The caller keeps the exception (as a retry loop or an error report does): its traceback keeps
    the frames alive, so nothing but an explicit close can give the connections back.
    """
    database = pg_url.rsplit("/", 1)[1]
    with pytest.raises(InferlogError) as failed:
        inferlog.open(pg_url, system="s", **mistake)
    deadline = time.monotonic() + 10
    while _connections(database) and time.monotonic() < deadline:
        time.sleep(0.05)  # a closed connection's backend exits just after the client lets go
    assert _connections(database) == 0, failed.value


def test_docs_assets_go_into_the_wheel() -> None:
    """The Swagger UI files are in the package folder and not git-ignored, which hatch's wheel build honours."""
    record = json.loads((STATIC / "SOURCES.json").read_text())
    names = [*record["sha256"], "SOURCES.json", "LICENSE", "NOTICE"]
    root = Path(__file__).resolve().parents[2]
    assert STATIC.is_relative_to(root / "src" / "inferlog")
    git = shutil.which("git")
    assert git is not None
    ignored = subprocess.run(
        [git, "check-ignore", *(str(STATIC / name) for name in names)], cwd=root, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    assert ignored.stdout == "", ignored.stdout
    assert all((STATIC / name).is_file() for name in names)
