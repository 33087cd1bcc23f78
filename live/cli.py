"""`insights live SERVICE` (a service's traffic second by second, with sample failures) and
`insights map` (the application map as two tables), over the collector's HTTP API."""

from __future__ import annotations

import itertools
from typing import Optional

import orjson
import typer
from rich.console import Console
from rich.table import Table

from collector.client import LiveMetrics, Workspace, application_map

console = Console(soft_wrap=True, highlight=False)


def live_command(
    service: str = typer.Argument(..., help="The service to watch."),
    role: Optional[str] = typer.Option(None, help="Only this role (cloud_RoleName)."),
    instance: Optional[str] = typer.Option(None, help="Only this instance (cloud_RoleInstance)."),
    condition: Optional[str] = typer.Option(
        None, help='Sample (and count) the items matching this, e.g. "duration > 500" or \'resultCode == "500"\' '
                   "(default: failed calls and exceptions)."),
    seconds: Optional[int] = typer.Option(None, help="Stop after this many seconds (default: until Ctrl-C)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per second, as the stream sends it."),
) -> None:
    """Watch a service's live metrics: requests, dependencies, exceptions, CPU and memory each
    second, and the sample failures as they arrive."""
    live = LiveMetrics(Workspace(), service)
    events = live.stream(role=role, instance=instance, condition=condition)
    try:
        for event in itertools.islice(events, seconds):
            if as_json:
                typer.echo(orjson.dumps(event).decode())
            else:
                _print_event(event)
    except KeyboardInterrupt:
        pass


def _print_event(event: dict) -> None:
    cpu = sum(i["cpuPercent"] or 0 for i in event["instances"] if i["cpuPercent"] is not None)
    memory = sum(i["memoryBytes"] or 0 for i in event["instances"] if i["memoryBytes"] is not None)
    healthy = sum(1 for i in event["instances"] if i["healthy"])
    for second in event["seconds"]:
        requests, dependencies = second["requests"], second["dependencies"]
        matched = f"  matched {second['matched']}" if "matched" in second else ""
        console.print(f"{second['time'][11:19]}  requests {requests['count']:>5} failed {requests['failed']:>4} "
                      f"p95 {_ms(requests['p95Ms'])}  dependencies {dependencies['count']:>5} "
                      f"failed {dependencies['failed']:>4} p95 {_ms(dependencies['p95Ms'])}  "
                      f"exceptions {second['exceptions']:>3}{matched}  instances {healthy}/{len(event['instances'])} "
                      f"cpu {cpu:.0f}% memory {memory / 2**20:.0f} MB")
    for sample in event["samples"]:
        what = sample.get("name") or sample.get("type") or sample.get("message") or ""
        console.print(f"  ! {sample['table']} {what} {sample.get('resultCode') or ''} {_ms(sample.get('duration'))} "
                      f"{sample.get('cloud_RoleName') or ''}/{sample.get('cloud_RoleInstance') or ''} "
                      f"operation {sample.get('operation_Id') or '-'}")


def map_command(
    timespan: str = typer.Option("PT1H", help="The time range: PT1H, P1D, or start/end."),
    service: Optional[list[str]] = typer.Option(None, help="Only these services (default: all the key reads)."),
    output: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """The application map: each role with its request rate, failure rate, p95 and instances, and
    each dependency from a role to another role or an external target."""
    found = application_map(Workspace(), timespan=timespan, services=service or ())
    if output == "json":
        typer.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())
        return
    nodes = Table("node", "kind", "requests/min", "failure rate", "p95 ms", "instances", "health", title="nodes")
    for node in found["nodes"]:
        nodes.add_row(node["id"], node["kind"], _number(node["requestsPerMinute"]), _percent(node["failureRate"]),
                      _number(node["p95Ms"]), str(node["instances"]), node["health"])
    edges = Table("from", "to", "calls", "failed", "avg ms", "p95 ms", "health", title="dependencies")
    for edge in found["edges"]:
        edges.add_row(edge["source"], edge["target"], str(edge["calls"]), str(edge["failed"]),
                      _number(edge["avgMs"]), _number(edge["p95Ms"]), edge["health"])
    console.print(nodes)
    console.print(edges)


def _ms(value: float | None) -> str:
    return f"{value:>6.0f}ms" if value is not None else "     -  "


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"
