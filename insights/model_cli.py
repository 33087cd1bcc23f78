"""`insights model register|list|show|download|delete`: the collector's model registry from the shell.

A model is named `NAME` (its latest version) or `NAME:VERSION`, as azureml-core's model ids are.
Registering and deleting need the admin key; the others, any key the collector knows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import orjson
import typer
from rich.console import Console
from rich.table import Table

from collector.client import Model, Workspace

model_app = typer.Typer(help="Register and manage models (versioned files or folders), as azureml-core's Model.",
                        no_args_is_help=True)
console = Console(soft_wrap=True, highlight=False)

SHOWN = ("id", "name", "version", "description", "tags", "root", "is_folder", "files", "size_bytes", "sha256",
         "created_time")


def _split(reference: str, version: Optional[int]) -> tuple[str, Optional[int]]:
    """(name, version) from NAME or NAME:VERSION (a --version given as well must agree)."""
    name, sep, number = reference.partition(":")
    if sep:
        if not number.isdigit():
            raise typer.BadParameter(f"{reference!r}: expected NAME or NAME:VERSION (a whole number)")
        if version is not None and version != int(number):
            raise typer.BadParameter(f"{reference!r} and --version {version} disagree")
        return name, int(number)
    return name, version


def _tags(pairs: list[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--tag {pair!r}: expected KEY=VALUE")
        tags[key] = value
    return tags


def _print(model: Model) -> None:
    data = model.serialize()
    width = max(len(key) for key in SHOWN)
    for key in SHOWN:
        value = data.get(key)
        console.print(f"{key.ljust(width)}  {orjson.dumps(value).decode() if isinstance(value, dict) else value}",
                      markup=False)


@model_app.command("register")
def register(
    name: str = typer.Argument(..., help="The model's name; each registration is its next version."),
    path: Path = typer.Argument(..., help="The model's file or folder."),
    tag: list[str] = typer.Option([], "--tag", help="KEY=VALUE, repeatable."),
    description: Optional[str] = typer.Option(None, "--description", help="What the model is."),
) -> None:
    """Upload a file or folder as the next version of NAME."""
    if not path.exists():
        raise typer.BadParameter(f"{path}: no such file or folder", param_hint="PATH")
    _print(Model.register(Workspace(), path, name, tags=_tags(tag), description=description))


@model_app.command("list")
def list_models(
    name: Optional[str] = typer.Option(None, "--name", help="Only this model's versions."),
    latest: bool = typer.Option(False, "--latest", help="Only the newest version of each model."),
    output: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Registered models, newest version first within a name."""
    models = Model.list(Workspace(), name=name, latest=latest)
    if output == "json":
        console.print(orjson.dumps([m.serialize() for m in models]).decode(), markup=False)
        return
    if not models:
        console.print("no models yet: insights model register NAME PATH", markup=False)
        return
    table = Table("id", "description", "tags", "files", "bytes", "sha256", "created")
    for column in table.columns:
        column.overflow = "fold"
    for m in models:
        table.add_row(m.id, m.description or "", orjson.dumps(m.tags).decode() if m.tags else "", str(m.files),
                      f"{m.size_bytes:,}", m.sha256[:12], m.created_time or "")
    console.print(table)


@model_app.command("show")
def show(reference: str = typer.Argument(..., metavar="NAME[:VERSION]"),
         version: Optional[int] = typer.Option(None, "--version", help="A version (default: the latest).")) -> None:
    """One model version's metadata."""
    name, number = _split(reference, version)
    _print(Model(Workspace(), name, version=number))


@model_app.command("download")
def download(reference: str = typer.Argument(..., metavar="NAME[:VERSION]"),
             target_dir: Path = typer.Option(Path("."), "--target-dir", help="Where to put the file or folder."),
             overwrite: bool = typer.Option(False, "--overwrite", help="Replace what is there.")) -> None:
    """Write a model version's file or folder into --target-dir; print its path."""
    name, number = _split(reference, None)
    console.print(Model(Workspace(), name, version=number).download(target_dir, exist_ok=overwrite), markup=False)


@model_app.command("delete")
def delete(reference: str = typer.Argument(..., metavar="NAME[:VERSION]"),
           version: Optional[int] = typer.Option(None, "--version", help="Only this version."),
           yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Delete one version (NAME:VERSION), or every version of NAME, with its files."""
    name, number = _split(reference, version)
    what = f"{name}:{number}" if number is not None else f"every version of {name}"
    if not yes:
        typer.confirm(f"delete model {what}?", abort=True)
    params = {"version": number} if number is not None else {}
    deleted = Workspace().request("DELETE", f"/api/models/{name}", params=params).json()["deleted"]
    console.print(f"deleted {', '.join(deleted)}", markup=False)
