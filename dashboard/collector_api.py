"""The dashboard's only way to the data: the collector's HTTP API, with the signed-in session's key.

The dashboard has no key of its own (see login.py): every call presents the key of the session
that asked, carried in its Link, and the caches below are keyed by the Link, so one session never
reads what another session's key fetched. Everything a page shows comes from here, cached for a few
seconds (st.cache_data) so reruns, page switches and auto-refresh do not repeat identical queries.
The Overview's queries run in parallel threads inside one cached call: the collector answers each
from its own read cursor, so the page waits for the slowest query rather than their sum.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from collector.client import DEFAULT_URL, ApiError, Workspace
from collector.client.resolve import URL_ENV_VAR, Connection

QUERY_TTL_S = 10
SERVICES_TTL_S = 5
_POSITION = re.compile(r"at line (\d+), column (\d+)")


@dataclass(frozen=True)
class Link:
    """Where the collector is and the signed-in session's key; hashable, so it keys the caches."""

    url: str
    api_key: str
    scope: str | None = None
    """The one service a service's API key reads; None for the admin key."""

    @property
    def is_admin(self) -> bool:
        return self.scope is None


@dataclass
class QueryResult:
    frame: pd.DataFrame
    render: str | None = None
    """The `render` operator's visualization (timechart, barchart, ...), if the query ended in one."""
    elapsed_ms: float | None = None
    truncated: bool = False


class QueryError(Exception):
    """A query the collector refused; line and column (1-based) when the KQL itself is wrong."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None, status: int = 400):
        super().__init__(message)
        self.message, self.line, self.column, self.status = message, line, column, status


def collector_url() -> str:
    """The collector's URL (INSIGHTS_URL, which the launcher sets). Only the URL: a key is never
    read from the environment or the data dir, it comes from whoever signs in."""
    return (os.environ.get(URL_ENV_VAR) or DEFAULT_URL).rstrip("/")


@st.cache_resource(show_spinner=False)
def _client(url: str) -> Workspace:
    """One HTTP client per collector for the whole server (keep-alive across reruns and sessions),
    holding no key: each request carries its session's."""
    return Workspace(connection=Connection(url, None, None, ("the dashboard's sign-in",)), timeout=30)


def _call(link: Link, method: str, path: str, **kwargs):
    return _client(link.url).request(method, path, headers={"x-api-key": link.api_key}, **kwargs)


def sign_in(url: str, api_key: str) -> Link:
    """The Link for a key typed in: whose key it is, from the collector (ApiError 401 if nobody's)."""
    who = _client(url).request("GET", "/api/dashboard/whoami", headers={"x-api-key": api_key}).json()
    return Link(url, api_key, None if who.get("admin") else who["service"])


def redeem(url: str, token: str) -> Link:
    """The Link a one-click login token stands for (ApiError 401 if it is unknown, used or expired)."""
    answer = _client(url).request("POST", "/api/dashboard/tokens/redeem", headers={"x-dashboard-token": token}).json()
    return Link(url, answer["api_key"], None if answer.get("admin", True) else answer.get("service"))


@st.cache_data(ttl=SERVICES_TTL_S, show_spinner=False)
def services(link: Link) -> list[dict]:
    """Every service for the admin key; a service's key sees its own only."""
    if link.scope is not None:
        return [_call(link, "GET", f"/api/services/{link.scope}").json()]
    return _call(link, "GET", "/api/services").json()


def run_query(link: Link, kql: str, timespan: str | None, service: str | None) -> QueryResult:
    """One KQL query through POST /v1/apps/{app}/query; QueryError says what and where."""
    body = {"query": kql, "timespan": timespan}
    if service:
        body["service"] = service
    try:
        answer = _call(link, "POST", "/v1/apps/default/query", json=body).json()
    except ApiError as error:
        raise _query_error(error) from None
    return _result(answer)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def query(link: Link, kql: str, timespan: str | None, service: str | None) -> QueryResult:
    return run_query(link, kql, timespan, service)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def query_all(link: Link, queries: dict[str, str], timespan: str | None, service: str | None) -> dict[str, QueryResult]:
    """Several queries at once, in parallel; one cache entry for the lot."""
    with ThreadPoolExecutor(max_workers=len(queries)) as pool:
        futures = {name: pool.submit(run_query, link, kql, timespan, service) for name, kql in queries.items()}
        return {name: future.result() for name, future in futures.items()}


def update_service(link: Link, name: str, enable_app_insights: bool) -> dict:
    """PATCH the switch; the collector's answer (the service as it now is) is returned."""
    answer = _call(link, "PATCH", f"/api/services/{name}", json={"enable_app_insights": enable_app_insights}).json()
    services.clear()
    return answer


def rotate_key(link: Link, name: str) -> dict:
    """A new API key for the service (the old one stops working); the answer holds it, once."""
    answer = _call(link, "POST", f"/api/services/{name}/keys/rotate").json()
    services.clear()
    return answer


@st.cache_data(ttl=SERVICES_TTL_S, show_spinner=False)
def stats(link: Link, name: str) -> dict:
    return _call(link, "GET", f"/api/services/{name}/stats").json()


@st.cache_data(ttl=SERVICES_TTL_S, show_spinner=False)
def set_aside(link: Link) -> dict:
    """Acknowledged batches the store refused, kept apart (admin key): {"batches": [...], "items": N}.
    Cached like the services: the collector reads every batch's file to describe it."""
    return _call(link, "GET", "/api/store/set-aside").json()


def replay_set_aside(link: Link) -> dict:
    """Commit the batches set aside; the counters change, so cached ones go."""
    answer = _call(link, "POST", "/api/store/set-aside/replay").json()
    stats.clear()
    set_aside.clear()
    return answer


def console_logs(link: Link, name: str, lines: int) -> str:
    """The service's console tail, oldest line first (what Webservice.get_logs returns)."""
    answer = _call(link, "GET", f"/api/services/{name}/logs", params={"lines": lines}).json()
    return "\n".join(entry["line"] for entry in answer["lines"])


def export_info(link: Link, name: str) -> dict:
    """{"settings": ..., "status": ...} of the service's continuous export."""
    return {
        "settings": _call(link, "GET", f"/api/services/{name}/export").json(),
        "status": _call(link, "GET", f"/api/services/{name}/export/status").json(),
    }


def _result(answer: dict) -> QueryResult:
    table = answer["tables"][0]
    names = [c["name"] for c in table["columns"]]
    frame = pd.DataFrame(table["rows"], columns=names)
    for column in table["columns"]:
        if column["type"] == "datetime":
            frame[column["name"]] = pd.to_datetime(frame[column["name"]], utc=True, format="ISO8601")
        elif column["type"] == "real":  # JSON has no NaN or infinities: the API writes them "NaN", "Infinity"
            frame[column["name"]] = frame[column["name"]].astype(float)
        elif column["type"] in ("long", "int"):  # numbers even when no row came (an empty frame's are objects)
            frame[column["name"]] = pd.to_numeric(frame[column["name"]])
    seconds = (answer.get("statistics") or {}).get("query", {}).get("executionTime")
    render = (answer.get("render") or {}).get("visualization")
    return QueryResult(frame, render, seconds * 1000 if seconds is not None else None, "error" in answer)


def _query_error(error: ApiError) -> QueryError:
    where = _POSITION.search(error.message)
    if where:
        return QueryError(error.message, int(where.group(1)), int(where.group(2)), error.status_code)
    return QueryError(error.message, status=error.status_code)


def endpoint(link: Link, name: str) -> dict | None:
    """The online endpoint of that name (deployments and their states), None if the service is none."""
    try:
        return _call(link, "GET", f"/api/endpoints/{name}").json()
    except ApiError as error:
        if error.status_code == 404:
            return None
        raise


def rollout(link: Link, name: str, timespan: str) -> dict:
    """The endpoint's deployments side by side and the verdict (endpoints/rollout.py)."""
    return _call(link, "GET", f"/api/endpoints/{name}/rollout", params={"timespan": timespan}).json()


def live(link: Link, service: str, seconds: int, role: str | None, instance: str | None,
         condition: str | None) -> dict:
    """The service's live metrics now (never cached: the Live page asks each second)."""
    params = {"service": service, "seconds": seconds, "role": role, "instance": instance, "condition": condition}
    return _call(link, "GET", "/api/live", params={k: v for k, v in params.items() if v}).json()


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def application_map(link: Link, timespan: str) -> dict:
    """The application map over `timespan`, across every service the session's key reads."""
    return _call(link, "GET", "/api/map", params={"timespan": timespan}).json()


def monitors(link: Link, name: str) -> list[dict]:
    """The service's model monitors (monitoring/api.py)."""
    return _call(link, "GET", f"/api/services/{name}/monitors").json()


def monitor_results(link: Link, name: str, monitor: str) -> list[dict]:
    """A monitor's results, newest window first."""
    return _call(link, "GET", f"/api/services/{name}/monitors/{monitor}/results").json()["results"]


def run_monitor(link: Link, name: str, monitor: str) -> dict:
    """Run a monitor now, over the window that ends now."""
    return _call(link, "POST", f"/api/services/{name}/monitors/{monitor}/run").json()
