"""`insights store migrate|copy`: create or upgrade a ClickHouse store's schema, and move an embedded
DuckDB store's telemetry into it (collector/store/clickhouse/); `insights store set-aside list|replay`:
the acknowledged batches a running collector's store refused (collector/store/set_aside.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from collector.client import DEFAULT_DATA_DIR, Workspace

store_app = typer.Typer(help="The store: a ClickHouse store's schema, copying a DuckDB store into it, "
                        "and batches set aside.", no_args_is_help=True)
set_aside_app = typer.Typer(help="Acknowledged batches the store refused, kept apart: list them, replay them.",
                            no_args_is_help=True)
store_app.add_typer(set_aside_app, name="set-aside")
console = Console()
err = Console(stderr=True)

STORE_HELP = "clickhouse://user@host:8123/db (or INSIGHTS_STORE; the password in INSIGHTS_STORE_PASSWORD)."


def _location(store: Optional[str], cluster: Optional[str] = None):
    """The ClickHouse location from --store or INSIGHTS_STORE (and --cluster); exits 2 on a bad one."""
    import os

    from collector.store.clickhouse.location import STORE_ENV, StoreLocationError, parse

    try:
        location = parse(store or os.environ.get(STORE_ENV))
    except StoreLocationError as error:
        err.print(f"[red]error:[/red] {error}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    if location is None:
        err.print(f"[red]error:[/red] name a ClickHouse store with --store or {STORE_ENV}", highlight=False)
        raise typer.Exit(2)
    return replace(location, cluster=cluster) if cluster else location


def _connection(location, database: str | None = None):
    """A connection to the location's database, its clients logged in to `database` (default:
    the location's own; migrate uses "default", since the store's database may not exist yet)."""
    from collector.store.clickhouse.location import ClickHouseConnection

    login = replace(location, database=database or location.database)
    return ClickHouseConnection(login.client, location.database, location.cluster)


@store_app.command("migrate")
def migrate_command(
    store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="Create replicated and Distributed tables ON CLUSTER NAME."),
) -> None:
    """Create the store's database and tables, or bring them up to date (safe to run again)."""
    from collector.store.clickhouse.migrate import migrate

    location = _location(store, cluster)
    try:
        ran = migrate(_connection(location, database="default"))
    except Exception as error:  # noqa: BLE001 - the server's message is the useful part
        err.print(f"[red]error:[/red] migrating {location.url} failed: {error}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    for migration in ran:
        console.print(f"applied {migration.version}: {migration.name}", highlight=False)
    console.print(f"{location.url} is up to date" if ran else f"{location.url} was up to date", highlight=False)


@store_app.command("copy")
def copy_command(
    from_dir: Path = typer.Option(Path(DEFAULT_DATA_DIR), "--from", help="The data dir of the DuckDB store (its collector stopped)."),
    store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Copy a DuckDB store's telemetry, services, alerts, endpoints, models and monitors into
    ClickHouse (what is there already is skipped)."""
    from collector.store.clickhouse.copy import copy_store, source_counts
    from collector.store.clickhouse.copy_state import copy_state, state_counts

    location = _location(store)
    connection = _connection(location)
    try:
        check_store(location)
        totals, state_totals = source_counts(from_dir), state_counts(from_dir)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        err.print(f"[red]error:[/red] {error}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    columns = (TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        tasks = {name: progress.add_task(name, total=count) for name, count in {**totals, **state_totals}.items() if count}

        def advance(name: str, done: int) -> None:
            progress.advance(tasks[name], done)

        reports = copy_store(from_dir, connection, progress=advance)
        try:
            state = copy_state(from_dir, connection, progress=advance)
        except FileNotFoundError as error:  # a registered model whose files are gone from the data dir
            err.print(f"[red]error:[/red] {error}", soft_wrap=True, highlight=False)
            raise typer.Exit(1) from None
    inserted = sum(r.inserted for r in reports)
    skipped = sum(r.skipped for r in reports)
    console.print(f"copied {inserted} rows, skipped {skipped} already in the store", highlight=False)
    moved = ", ".join(f"{r.table} {r.inserted}" + (f" (skipped {r.skipped})" if r.skipped else "")
                      for r in state if r.source_rows)
    console.print(f"copied state: {moved or 'none'}", highlight=False, soft_wrap=True)


def check_store(location) -> None:
    """Raise ValueError unless the ClickHouse store answers and its schema is current (`insights up`
    says so before it starts anything)."""
    from collector.store.clickhouse.migrate import SchemaBehind, check_current

    try:
        check_current(_connection(location))
    except SchemaBehind as error:
        raise ValueError(str(error)) from None
    except Exception as error:  # noqa: BLE001 - unreachable, refused login, missing database...
        raise ValueError(f"cannot use the ClickHouse store {location.url} ({error}); "
                         "a new store needs `insights store migrate` first") from None


@set_aside_app.command("list")
def set_aside_list(as_json: bool = typer.Option(False, "--json", help="The collector's answer as JSON.")) -> None:
    """The batches set aside, oldest first, and why the store refused each."""
    answer = Workspace().set_aside()
    if as_json:
        console.print_json(data=answer)
        return
    if not answer["batches"]:
        console.print("nothing is set aside", highlight=False)
        return
    table = Table("record", "set aside at", "items by service", "rows", "reason", title="batches set aside")
    for batch in answer["batches"]:
        table.add_row(str(batch["record"]), batch["set_aside_at"], _by_key(batch["items"]),
                      _by_key(batch["rows"]), batch["reason"])
    console.print(table)
    console.print(f"set aside: {len(answer['batches'])} batches, {answer['items']:,} items; "
                  "`insights store set-aside replay` commits them once the cause is fixed", highlight=False)


@set_aside_app.command("replay")
def set_aside_replay() -> None:
    """Commit the batches set aside now; those the store refuses again stay, with its reason (exit 1)."""
    workspace = Workspace()
    listed = workspace.set_aside()
    with console.status(f"replaying {len(listed['batches'])} batches, {listed['items']:,} items"):
        answer = workspace.replay_set_aside()
    console.print(f"replayed: {answer['replayed']} batches, {answer['items']:,} items", highlight=False)
    for refused in answer["refused"]:
        err.print(f"[red]refused again:[/red] record {refused['record']}: {refused['reason']}", soft_wrap=True,
                  highlight=False)
    if answer["refused"]:
        raise typer.Exit(1)


def _by_key(counts: dict) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in counts.items())
