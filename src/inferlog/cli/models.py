"""``inferlog models``: the model registry kept in the log (``register``, ``list``, ``show``, ``schema``),
through :mod:`inferlog.lineage` and :mod:`inferlog.model_schemas`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from inferlog.cli._common import State, cli_actor, console, inert, pass_state
from inferlog.errors import NotFound, UsageError
from inferlog.lineage import Registration, card_of, register_model, registered_models
from inferlog.model_schemas import ModelSchema, check_schema, model_schemas, record_schema

_SCHEMA_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _schema_file(path: Path) -> object:
    """A schema file's JSON; a one-line error if it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path.name} is not a JSON schema file: {exc}") from None


def _schema_cell(schema: ModelSchema | None) -> str:
    if schema is None:
        return ""
    text = f"{len(schema.inputs)} in, {len(schema.outputs)} out ({schema.source})"
    return text + ", schema changed" if schema.changed else text


@click.group("models")
def models_group() -> None:
    """Register model versions (digest, lineage URI, card) so records carry them."""


@models_group.command("register")
@click.argument("name")
@click.argument("version")
@click.option("--digest", required=True, help="The artifact's digest, sha256:<64 hex digits>.")
@click.option("--uri", default=None, help="Where the model comes from: a registry or training-run URI.")
@click.option(
    "--card",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A model card file: its SHA-256, size and name are kept (its text too when at most 16 KiB).",
)
@click.option(
    "--schema",
    type=_SCHEMA_FILE,
    default=None,
    help='A JSON file {"inputs": [{"name", "datatype", "shape"}], "outputs": [...]}: kept as the version\'s schema.',
)
@pass_state
def register_command(
    state: State,
    /,
    name: str,
    version: str,
    digest: str,
    uri: str | None,
    card: Path | None,
    schema: Path | None,
) -> None:
    """Register NAME VERSION: records of it made without a digest or URI get them from here.

    A version names one artifact: registering it again with another digest is refused.
    """
    card_info = card_of(card.read_bytes(), card.name) if card is not None else None
    schema_given = _schema_file(schema) if schema is not None else None
    store = state.store(must_exist=False)
    if schema_given is not None:  # checked before anything is written
        check_schema(schema_given)
    registration = register_model(
        store,
        name,
        version,
        digest=digest,
        uri=uri,
        card=card_info,
        actor=cli_actor(),
    )
    if schema_given is not None:
        record_schema(store, name, version, schema_given, source="user", actor=cli_actor())
    console().print(f"registered {inert(name)} {inert(version)} {registration.digest}")


@models_group.command("schema")
@click.argument("name")
@click.argument("version")
@click.argument("file", type=_SCHEMA_FILE)
@pass_state
def schema_command(state: State, /, name: str, version: str, file: Path) -> None:
    """Record the input/output schema of NAME VERSION from FILE (JSON: inputs and outputs).

    The same schema again writes nothing; a different one is recorded and flagged "schema changed".
    """
    made = record_schema(
        state.store(must_exist=False), name, version, _schema_file(file), source="user", actor=cli_actor()
    )
    console().print(f"schema of {inert(name)} {inert(version)}: sha256 {made.sha256}")


@models_group.command("show")
@click.argument("name")
@click.argument("version")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@pass_state
def show_command(state: State, /, name: str, version: str, as_json: bool) -> None:
    """Show NAME VERSION: its registration and its latest schema (each field's name, type and shape)."""
    store = state.store()
    registration = next((r for r in registered_models(store) if (r.name, r.version) == (name, version)), None)
    schema = next((s for s in model_schemas(store) if (s.name, s.version) == (name, version)), None)
    if registration is None and schema is None:
        raise NotFound(f"{name} {version} is neither registered nor has a schema on record")
    if as_json:
        view = registration.public_view() if registration else {"name": name, "version": version}
        click.echo(json.dumps({**view, "schema": schema.public_view() if schema else None}))
        return
    out = console()
    out.print(f"{inert(name)} {inert(version)}")
    if registration is not None:
        out.print(f"  digest {registration.digest}")
        if registration.uri:
            out.print(f"  uri {inert(registration.uri)}")
    if schema is None:
        out.print("  no schema on record")
        return
    out.print(
        f"  schema sha256 {schema.sha256} from {schema.source}"
        + (" (schema changed)" if schema.changed else "")
    )
    for side, fields in (("input", schema.inputs), ("output", schema.outputs)):
        for field in fields:
            shape = field.get("shape")
            out.print(
                f"  {side} {inert(str(field['name']))} {inert(str(field.get('datatype', '')))}"
                + (f" {shape}" if shape is not None else "")
            )


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@pass_state
def list_command(state: State, /, as_json: bool) -> None:
    """List registered model versions (the latest registration of each) and their schemas."""
    store = state.store()
    registrations = registered_models(store)
    schemas = {(s.name, s.version): s for s in model_schemas(store)}
    if as_json:
        for registration in registrations:
            schema = schemas.get((registration.name, registration.version))
            click.echo(
                json.dumps({**registration.public_view(), "schema": schema.public_view() if schema else None})
            )
        for schema in _unregistered(schemas, registrations):
            click.echo(
                json.dumps({"name": schema.name, "version": schema.version, "schema": schema.public_view()})
            )
        return
    table = Table("model", "version", "digest", "uri", "card", "schema", "registered")
    for r in registrations:
        table.add_row(
            inert(r.name),
            inert(r.version),
            r.digest,
            inert(r.uri or ""),
            inert(str(r.card.get("ref", ""))) if r.card else "",
            _schema_cell(schemas.get((r.name, r.version))),
            f"{r.ts:%Y-%m-%d %H:%M}" if r.ts else "",
        )
    for schema in _unregistered(schemas, registrations):  # a schema on record for a version not registered
        table.add_row(inert(schema.name), inert(schema.version), "", "", "", _schema_cell(schema), "")
    console().print(table)


def _unregistered(
    schemas: dict[tuple[str, str], ModelSchema], registrations: list[Registration]
) -> list[ModelSchema]:
    known = {(r.name, r.version) for r in registrations}
    return [s for key, s in schemas.items() if key not in known]


COMMANDS = [models_group]
