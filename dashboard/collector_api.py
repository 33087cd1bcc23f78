"""The dashboard's only way to the data: the collector's HTTP API, through the SDK's Workspace.

Everything a page shows comes from here, cached for a few seconds (st.cache_data) so reruns,
page switches and auto-refresh do not repeat identical queries. The Overview's queries run in
parallel threads inside one cached call: the collector answers each from its own read cursor, so
the page waits for the slowest query rather than their sum.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from collector.client import ApiError, Webservice, Workspace, resolve_collector

QUERY_TTL_S = 10
SERVICES_TTL_S = 5
_POSITION = re.compile(r"at line (\d+), column (\d+)")


@dataclass(frozen=True)
class Link:
    """Where the collector is and which key to present; hashable, so it can key the caches."""

    url: str
    api_key: str | None
    key_hint: str = field(default="", compare=False)
    """Where the key came from, or every place it was looked for (Connection.key_hint)."""


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


def link_from_environment() -> Link:
    """The same collector and key the CLI uses (resolve_collector): INSIGHTS_URL, INSIGHTS_API_KEY
    or the data dir's admin.key."""
    connection = resolve_collector()
    return Link(connection.url, connection.api_key, connection.key_hint())


@st.cache_resource(show_spinner=False)
def workspace(link: Link) -> Workspace:
    """One HTTP client per collector for the whole server: keep-alive across reruns and sessions."""
    return Workspace(link.url, api_key=link.api_key or "", timeout=30)


@st.cache_data(ttl=SERVICES_TTL_S, show_spinner=False)
def services(link: Link) -> list[dict]:
    return workspace(link).request("GET", "/api/services").json()


def run_query(link: Link, kql: str, timespan: str | None, service: str | None) -> QueryResult:
    """One KQL query through POST /v1/apps/{app}/query; QueryError says what and where."""
    body = {"query": kql, "timespan": timespan}
    if service:
        body["service"] = service
    try:
        answer = workspace(link).request("POST", "/v1/apps/default/query", json=body).json()
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
    answer = workspace(link).request("PATCH", f"/api/services/{name}", json={"enable_app_insights": enable_app_insights}).json()
    services.clear()
    return answer


@st.cache_data(ttl=SERVICES_TTL_S, show_spinner=False)
def stats(link: Link, name: str) -> dict:
    return workspace(link).request("GET", f"/api/services/{name}/stats").json()


def console_logs(link: Link, name: str, lines: int) -> str:
    """The service's console tail (Webservice.get_logs)."""
    return Webservice(workspace(link), name, _data={"name": name}).get_logs(lines=lines)


def export_info(link: Link, name: str) -> dict:
    """{"settings": ..., "status": ...} of the service's continuous export."""
    ws = workspace(link)
    return {
        "settings": ws.request("GET", f"/api/services/{name}/export").json(),
        "status": ws.request("GET", f"/api/services/{name}/export/status").json(),
    }


def _result(answer: dict) -> QueryResult:
    table = answer["tables"][0]
    names = [c["name"] for c in table["columns"]]
    frame = pd.DataFrame(table["rows"], columns=names)
    for column in table["columns"]:
        if column["type"] == "datetime":
            frame[column["name"]] = pd.to_datetime(frame[column["name"]], utc=True, format="ISO8601")
    seconds = (answer.get("statistics") or {}).get("query", {}).get("executionTime")
    render = (answer.get("render") or {}).get("visualization")
    return QueryResult(frame, render, seconds * 1000 if seconds is not None else None, "error" in answer)


def _query_error(error: ApiError) -> QueryError:
    where = _POSITION.search(error.message)
    if where:
        return QueryError(error.message, int(where.group(1)), int(where.group(2)), error.status_code)
    return QueryError(error.message, status=error.status_code)
