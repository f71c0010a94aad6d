"""Regenerate docs/cli-reference.md and docs/settings.md from the code (tests check they are current).

.venv/bin/python scripts/gen_docs.py          # rewrite the files
.venv/bin/python scripts/gen_docs.py --check  # exit 1 if they are stale
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from inferlog.cli import cli
from inferlog.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent


def _commands(group: click.Group, prefix: list[str]) -> list[tuple[list[str], click.Command]]:
    out: list[tuple[list[str], click.Command]] = []
    for name in sorted(group.commands):
        command = group.commands[name]
        out.append(([*prefix, name], command))
        if isinstance(command, click.Group):
            out += _commands(command, [*prefix, name])
    return out


def cli_reference() -> str:
    parts = [
        "# CLI reference",
        "",
        "Generated from `inferlog --help` by `scripts/gen_docs.py`; do not edit by hand.",
        "Every command takes the group option `--db URL` (or `INFERLOG_DB`), e.g.",
        "`inferlog --db postgresql://inferlog@db/inferlog query`. Errors are one line on stderr, exit code 1.",
        "",
    ]
    root = click.Context(cli, info_name="inferlog", terminal_width=100, max_content_width=100)
    parts += ["## inferlog", "", "```", cli.get_help(root), "```", ""]
    for path, command in _commands(cli, []):
        parents = root
        for name in path[:-1]:
            parents = click.Context(parents.command.commands[name], info_name=name, parent=parents)  # type: ignore[attr-defined]
        ctx = click.Context(
            command, info_name=path[-1], parent=parents, terminal_width=100, max_content_width=100
        )
        parts += [f"## inferlog {' '.join(path)}", "", "```", command.get_help(ctx), "```", ""]
    return "\n".join(parts)


def settings_reference() -> str:
    lines = [
        "# Settings",
        "",
        "Generated from `inferlog.config.SETTINGS` by `scripts/gen_docs.py`; do not edit by hand.",
        "Explicit arguments (`inferlog.open(...)`, command-line options) win over these variables,",
        "which win over the defaults.",
        "",
        "| variable | meaning |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {meaning} |" for name, meaning in SETTINGS.items()]
    return "\n".join(lines) + "\n"


FILES = {"docs/cli-reference.md": cli_reference, "docs/settings.md": settings_reference}


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    for name, make in FILES.items():
        path = ROOT / name
        text = make()
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)}; run .venv/bin/python scripts/gen_docs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
