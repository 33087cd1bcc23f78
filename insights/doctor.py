"""`insights doctor`: checks a setup end to end, the way a new user's first commands would meet it
(collector reachable, key found and accepted, the service and its wrappers, the SDK's phone-home
switches), and says what to fix in plain words; exit 1 if anything fails."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Optional

import httpx
import typer

from collector.client import resolve_collector

PHONE_HOME_VARIABLES = ("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED")
"""Unless set to true, the Azure Monitor SDKs call Microsoft (statsbeat, the control plane) besides the collector."""


def diagnose(service: str | None = None, environ: Mapping[str, str] | None = None) -> list[tuple[bool, str]]:
    """(passed, what was found or what to fix) for each check, in order."""
    environ = os.environ if environ is None else environ
    results: list[tuple[bool, str]] = []
    connection = resolve_collector(environ=environ)
    if connection.api_key:
        results.append((True, f"key found ({connection.key_hint()})"))
    else:
        results.append((False, f"no key found ({connection.key_hint()}): start the collector with `insights up` "
                               "(it records where its key is), or set INSIGHTS_API_KEY"))
    try:
        health = httpx.get(f"{connection.url}/healthz", timeout=5)
        results.append((True, f"collector reachable at {connection.url} (HTTP {health.status_code})"))
    except httpx.HTTPError as error:
        results.append((False, f"collector not reachable at {connection.url} ({type(error).__name__}): start it with "
                               "`insights up`, or set INSIGHTS_URL to where it runs"))
        return results + _phone_home(environ)
    if connection.api_key:
        headers = {"x-api-key": connection.api_key}
        answer = httpx.get(f"{connection.url}/api/services", headers=headers, timeout=10)
        if answer.status_code in (401, 403):
            results.append((False, f"the collector refuses the key ({connection.key_hint()}): use the admin key that "
                                   "`insights up` printed (the admin.key in its data dir)"))
        elif answer.is_success:
            results.append((True, "the collector accepts the key"))
            results.extend(_set_aside(connection.url, headers))
            if service:
                results.extend(_service(connection.url, headers, service))
        else:
            results.append((False, f"the collector answered {answer.status_code} to /api/services"))
    return results + _phone_home(environ)


def _service(url: str, headers: dict, name: str) -> list[tuple[bool, str]]:
    answer = httpx.get(f"{url}/api/services/{name}", headers=headers, timeout=10)
    if answer.status_code == 404:
        return [(False, f"no service named {name!r}: create it with `insights service create {name}`")]
    if not answer.is_success:
        return [(False, f"the collector answered {answer.status_code} about service {name!r}")]
    found = [(True, f"service {name!r} exists" + ("" if answer.json().get("enable_app_insights") else
                                                   " (its telemetry is switched off: `insights service update "
                                                   f"{name} --enable-app-insights`)"))]
    state = httpx.get(f"{url}/api/services/{name}/state", headers=headers, timeout=10)
    if state.is_success:
        body = state.json()
        current, detail = body.get("state"), f" ({body['detail']})" if body.get("detail") else ""
        if current in ("Healthy", "Stopped"):
            found.append((True, f"its wrapper is {current}{detail}"))
        elif current == "Unknown":
            found.append((False, f"no wrapper of {name!r} has reported lately: start one with "
                                 f"`insights score --service {name} ...`"))
        else:
            found.append((False, f"its wrapper is {current}{detail}: see `insights logs {name}`"))
    return found


def _set_aside(url: str, headers: dict) -> list[tuple[bool, str]]:
    """Acknowledged items the store refused (the admin key sees them; a service's key skips this)."""
    answer = httpx.get(f"{url}/api/store/set-aside", headers=headers, timeout=10)
    if not answer.is_success:
        return []
    found = answer.json()
    if not found["batches"]:
        return [(True, "no acknowledged items set aside by the store")]
    return [(False, f"the store refused {found['items']:,} acknowledged items ({len(found['batches'])} batches) and "
                    "set them aside: `insights store set-aside list` says why; once that is fixed, "
                    "`insights store set-aside replay`")]


def _phone_home(environ: Mapping[str, str]) -> list[tuple[bool, str]]:
    unset = [name for name in PHONE_HOME_VARIABLES if environ.get(name, "").strip().lower() not in ("true", "1")]
    if not unset:
        return [(True, "the SDK's phone-home variables are set")]
    return [(False, f"{' and '.join(unset)} not set to true: the Azure Monitor SDKs would also call Microsoft; "
                    f"export {' '.join(f'{name}=true' for name in unset)}")]


def doctor_command(
    service: Optional[str] = typer.Option(None, "--service", help="Also check this service and its wrappers."),
) -> None:
    """Check the setup end to end and say what to fix; exit 1 if anything fails."""
    results = diagnose(service)
    for passed, message in results:
        typer.echo(f"{'ok  ' if passed else 'FAIL'}  {message}")
    if not all(passed for passed, _ in results):
        raise typer.Exit(1)
