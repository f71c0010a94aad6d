"""The README's snippets run as written, in order, against the demo's log: a new user can paste them.

The harness stands where a user stands after ``./scripts/run``: a folder holding the demo's
``./inferlog.db`` and a ``.venv`` (here a link to the one running the tests). Every ```python block
runs with the venv's Python; every ```console block runs its ``$ `` lines, in order, in one bash
session (so ``source`` and ``export`` carry over, as in a terminal) with the venv's bin first on PATH;
every ```toml block is saved under the file name on its first line, as the README asks. A ```text
block is an example the README marks as not to paste, and nothing else may appear.

Two commands are not run as written: ``./scripts/run`` is ``inferlog demo`` here (the script only
installs the venv first, and its shown output is compared with the demo's), and ``./scripts/test``
is this suite itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from inferlog.config import ENV_DB

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
KINDS = {"python", "console", "toml", "text"}
SUBSTITUTES = {"./scripts/run": "inferlog demo", "./scripts/test": None}
QUIET = ("source ", "export ", "mkdir ", "cd ")  # commands that rightly print nothing
_MARK = "@@readme-command"


@dataclass(frozen=True)
class Block:
    kind: str
    text: str
    line: int  # where the block starts in README.md, for failure messages


def readme_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, in order."""
    return [
        Block(match.group(1), match.group(2), text[: match.start()].count("\n") + 1)
        for match in re.finditer(r"^```(\w*)\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)
    ]


def commands_of(block: Block) -> list[str]:
    """The ``$ `` lines of a console block, without the prompt."""
    return [line[2:] for line in block.text.splitlines() if line.startswith("$ ")]


def shown_output(block: Block) -> list[str]:
    """The lines of a console block that show output (not commands, not an elided ``...``)."""
    return [line for line in block.text.splitlines() if line and not line.startswith("$ ") and line != "..."]


def _tool(name: str) -> str:
    found = shutil.which(name)
    assert found is not None, f"{name} is not on PATH"
    return found


def user_env(home: Path) -> dict[str, str]:
    """The environment of a user who has not set any INFERLOG_* variable, with a home of their own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERLOG_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(home)
    env["COLUMNS"] = "200"
    return env


def run_console(commands: list[str], cwd: Path, env: dict[str, str]) -> list[tuple[str, int, str]]:
    """Run commands in one bash session; (command, exit code, its stdout+stderr) for each one run."""
    script = []
    for number, command in enumerate(commands):
        script += [f"echo '{_MARK} {number}'", "{", command, "} 2>&1", f"echo '{_MARK} rc' $?"]
    done = subprocess.run(
        [_tool("bash"), "--noprofile", "--norc"], input="\n".join(script) + "\n", cwd=cwd, env=env,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    results: list[tuple[str, int, str]] = []
    for chunk in done.stdout.split(f"{_MARK} ")[1:]:
        head, _, rest = chunk.partition("\n")
        if head.isdigit():
            results.append((commands[int(head)], -1, rest))
        elif head.startswith("rc") and results:
            command, _, output = results[-1]
            results[-1] = (command, int(head.split()[1]), output)
    return results


def not_ignored(folder: Path) -> list[str]:
    """The files in ``folder`` that git would offer to commit under the project's .gitignore."""
    (folder / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    subprocess.run([_tool("git"), "init", "-q", str(folder)], check=True)
    listed = subprocess.run(
        [_tool("git"), "status", "--porcelain", "--untracked-files=all"], cwd=folder, capture_output=True,
        text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    return [line[3:] for line in listed if line[3:] not in {".gitignore", ".venv"}]  # .venv: our link


@pytest.fixture
def user_folder(tmp_path: Path) -> Path:
    """The folder ``./scripts/run`` leaves: a ``.venv`` and nothing else yet (the demo runs in the test)."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / ".venv").symlink_to(VENV_BIN.parent)
    (tmp_path / "home").mkdir()
    return folder


def test_readme_has_only_snippets_this_test_understands() -> None:
    """Every fenced block is python, console, toml (saved under its named file) or a text example."""
    blocks = readme_blocks(README.read_text())
    assert len(blocks) >= 6
    assert {block.kind for block in blocks} <= KINDS, [(b.kind, b.line) for b in blocks]
    for block in blocks:
        if block.kind == "toml":
            assert re.fullmatch(r"# [\w.-]+\.toml", block.text.splitlines()[0]), block.line


def test_every_readme_snippet_runs_as_written(user_folder: Path) -> None:
    """Each README snippet, in order, succeeds in the demo's folder and prints what it says it prints."""
    env = user_env(user_folder.parent / "home")
    assert ENV_DB not in env
    for block in readme_blocks(README.read_text()):
        where = f"README.md line {block.line}"
        if block.kind == "python":
            script = user_folder.parent / f"readme_{block.line}.py"
            script.write_text(block.text)
            done = subprocess.run(
                [sys.executable, str(script)], cwd=user_folder, env=env, capture_output=True, text=True,
                check=False,
            )  # fmt: skip
            assert done.returncode == 0, f"{where}: {done.stderr}"
            if "print(" in block.text:
                assert done.stdout.strip(), f"{where} printed nothing"
            for sample in printed_samples(block):  # the README's "# 665 01a2… KeyError" is what it prints
                assert shows(sample, done.stdout), (
                    f"{where}: the README shows {sample!r}; it prints:\n{done.stdout}"
                )
        elif block.kind == "toml":
            (user_folder / block.text.splitlines()[0][2:]).write_text(block.text)
        elif block.kind == "console":
            _run_console_block(block, user_folder, env)
    assert not_ignored(user_folder) == [], "the tour leaves files .gitignore does not cover"


def _run_console_block(block: Block, folder: Path, env: dict[str, str]) -> None:
    where = f"README.md line {block.line}"
    commands = [SUBSTITUTES.get(command, command) for command in commands_of(block)]
    runnable = [command for command in commands if command is not None]
    results = run_console(runnable, folder, env)
    assert [command for command, _, _ in results] == runnable, f"{where}: the shell stopped early"
    for command, code, output in results:
        assert code == 0, f"{where}: `{command}` exited {code}:\n{output}"
        if not command.startswith(QUIET):
            assert output.strip(), f"{where}: `{command}` printed nothing"
        assert "Traceback" not in output, f"{where}: `{command}`:\n{output}"
    if "inferlog demo" in runnable:  # the README shows the demo's real first lines
        demo_output = results[runnable.index("inferlog demo")][2]
        for line in shown_output(block):
            assert line in demo_output, f"{where}: the README shows {line!r}; the demo prints:\n{demo_output}"
    else:  # sample output ("OK 670 entries ... root at 670: …"): what the commands really print
        printed = "".join(output for _, _, output in results)
        for line in shown_output(block):
            assert shows(line, printed), f"{where}: the README shows {line!r}; the commands print:\n{printed}"


def printed_samples(block: Block) -> list[str]:
    """The trailing comments of a Python block's ``print(`` lines: the output the README says they give."""
    return [
        line.partition("#")[2].strip()
        for line in block.text.splitlines()
        if line.lstrip().startswith("print(") and "#" in line
    ]


def shows(sample: str, output: str) -> bool:
    """Whether ``output`` has a line that ``sample`` shows, ``…`` standing for any text (an id, a hash)."""
    pattern = ".*?".join(re.escape(part) for part in sample.split("…"))
    return re.search(pattern, output) is not None


FOREVER = {"inferlog tail -f", "inferlog serve --no-auth"}  # hints that keep running until Ctrl-C


def demo_hints(printed: str) -> list[str]:
    """The commands `inferlog demo` suggests, as printed (two-space indent, comments kept)."""
    return [
        line[2:] for line in printed.splitlines() if line.startswith(("  inferlog", "  python", "  mkdir"))
    ]


def test_demo_hints_run_as_printed(tmp_path: Path) -> None:
    """Every command `inferlog demo` suggests (but the two that run until Ctrl-C) succeeds and prints."""
    env = user_env(tmp_path)
    done = subprocess.run(
        [str(VENV_BIN / "inferlog"), "demo", "-n", "60"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    hints = demo_hints(done.stdout)
    assert any("duckdb" in hint for hint in hints)
    assert set(hints) >= FOREVER
    runnable = [hint for hint in hints if hint not in FOREVER]
    results = run_console(runnable, tmp_path, env)
    assert [command for command, _, _ in results] == runnable
    for command, code, output in results:
        assert code == 0, f"`{command}` exited {code}:\n{output}"
        assert "Traceback" not in output
        if not command.startswith(QUIET):
            assert output.strip(), f"`{command}` printed nothing"
    assert not_ignored(tmp_path) == [], "the demo and its hints leave files .gitignore does not cover"


def test_the_demo_extra_installs_what_the_hints_import() -> None:
    """`./scripts/run` installs the `all` extra; it includes duckdb, which the demo's hint imports."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert "-e '.[all]'" in (ROOT / "scripts" / "run").read_text()
    assert any(name.startswith("inferlog[") and "demo" in name for name in extras["all"])
    assert any(requirement.startswith("duckdb") for requirement in extras["demo"])
