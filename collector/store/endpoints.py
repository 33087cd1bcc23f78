"""Online endpoints and their deployments: what a user defined (scripts, traffic, mirror, keys,
limits) and what the endpoint host last reported (each deployment's state).

An endpoint is also a service of the same name (its telemetry, keys for reading, export and
retention are the service's); this table holds only what makes it an endpoint. The scoring keys
(primary, secondary) are kept in clear because `get-credentials` shows them at any time, as Azure
does; only the admin key reads them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import duckdb

from collector.store.writer import Writer

DDL = (
    """CREATE TABLE IF NOT EXISTS endpoints (
        name VARCHAR PRIMARY KEY,
        port INTEGER NOT NULL,
        primary_key VARCHAR NOT NULL,
        secondary_key VARCHAR NOT NULL,
        traffic VARCHAR NOT NULL,
        mirror VARCHAR NOT NULL,
        rate_limit INTEGER NOT NULL,
        request_timeout_ms INTEGER NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS endpoint_deployments (
        endpoint VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        entry_script VARCHAR NOT NULL,
        model_dir VARCHAR,
        instance_count INTEGER NOT NULL,
        max_concurrent INTEGER NOT NULL,
        generation INTEGER NOT NULL,
        state VARCHAR NOT NULL,
        error_code VARCHAR,
        message VARCHAR,
        restarts INTEGER NOT NULL,
        logs VARCHAR,
        updated_at TIMESTAMP NOT NULL,
        PRIMARY KEY (endpoint, name)
    )""",
)

_ENDPOINT_COLUMNS = "name, port, primary_key, secondary_key, traffic, mirror, rate_limit, request_timeout_ms, created_at"
_DEPLOYMENT_COLUMNS = ("endpoint, name, entry_script, model_dir, instance_count, max_concurrent, generation, state, "
                       "error_code, message, restarts, logs, updated_at")


def new_key() -> str:
    return secrets.token_urlsafe(32)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Deployment:
    endpoint: str
    name: str
    entry_script: str
    model_dir: str | None = None
    instance_count: int = 1
    max_concurrent: int = 1
    generation: int = 1
    """Bumped by each `deployment create` of the same name, so the host restarts it on the new terms."""
    state: str = "Provisioning"
    error_code: str | None = None
    message: str | None = None
    restarts: int = 0
    logs: str | None = None
    updated_at: datetime = field(default_factory=_now)

    def to_json(self) -> dict:
        return {**asdict(self), "updated_at": _iso(self.updated_at)}


@dataclass
class Endpoint:
    name: str
    port: int
    primary_key: str
    secondary_key: str
    traffic: dict[str, int]
    mirror: dict[str, int]
    rate_limit: int
    request_timeout_ms: int
    created_at: datetime = field(default_factory=_now)
    deployments: list[Deployment] = field(default_factory=list)
    address: str = "127.0.0.1"
    """Where its router listens: the address of the collector running its host (EndpointStore.place)."""

    def to_json(self, with_keys: bool = False) -> dict:
        shown = {key: value for key, value in asdict(self).items() if not key.endswith("_key") and key != "address"}
        host = f"[{self.address}]" if ":" in self.address else self.address
        shown.update(created_at=_iso(self.created_at), deployments=[d.to_json() for d in self.deployments],
                     scoring_uri=f"http://{host}:{self.port}/score")
        if with_keys:
            shown.update(primary_key=self.primary_key, secondary_key=self.secondary_key)
        return shown


class EndpointStore:
    """Reads through a cursor of their own; every change is one commit of the single writer."""

    def __init__(self, reader: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]], writer: Writer):
        self._reader = reader
        self._writer = writer
        self._address = "127.0.0.1"

    def place(self, address: str, holder: str = "") -> None:
        """Endpoint hosts run at `address` (this collector's endpoint_host setting): one collector,
        nothing to record; store/clickhouse/endpoints.py records it for every collector."""
        self._address = address

    def names(self) -> list[str]:
        with self._reader() as cursor:
            return [row[0] for row in cursor.execute("SELECT name FROM endpoints ORDER BY name").fetchall()]

    def get(self, name: str) -> Endpoint | None:
        with self._reader() as cursor:
            row = cursor.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM endpoints WHERE name = ?", [name]).fetchone()
            if row is None:
                return None
            rows = cursor.execute(f"SELECT {_DEPLOYMENT_COLUMNS} FROM endpoint_deployments WHERE endpoint = ? "
                                  "ORDER BY name", [name]).fetchall()
        name, port, primary, secondary, traffic, mirror, rate_limit, timeout_ms, created_at = row
        return Endpoint(name, port, primary, secondary, json.loads(traffic), json.loads(mirror), rate_limit, timeout_ms,
                        created_at, [Deployment(*found) for found in rows], self._address)

    def create(self, endpoint: Endpoint) -> Future:
        return self._writer.write(operation=lambda con: con.execute(
            f"INSERT INTO endpoints ({_ENDPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [endpoint.name, endpoint.port, endpoint.primary_key, endpoint.secondary_key, json.dumps(endpoint.traffic),
             json.dumps(endpoint.mirror), endpoint.rate_limit, endpoint.request_timeout_ms, endpoint.created_at]))

    def update(self, endpoint: Endpoint) -> Future:
        """Traffic, mirror, limits and keys as `endpoint` has them."""
        return self._writer.write(operation=lambda con: con.execute(
            "UPDATE endpoints SET traffic = ?, mirror = ?, rate_limit = ?, request_timeout_ms = ?, primary_key = ?, "
            "secondary_key = ? WHERE name = ?",
            [json.dumps(endpoint.traffic), json.dumps(endpoint.mirror), endpoint.rate_limit,
             endpoint.request_timeout_ms, endpoint.primary_key, endpoint.secondary_key, endpoint.name]))

    def delete(self, name: str) -> Future:
        def remove(con: duckdb.DuckDBPyConnection) -> None:
            con.execute("DELETE FROM endpoint_deployments WHERE endpoint = ?", [name])
            con.execute("DELETE FROM endpoints WHERE name = ?", [name])

        return self._writer.write(operation=remove)

    def put_deployment(self, deployment: Deployment) -> Future:
        """Insert or replace the deployment's definition; it starts over as Provisioning."""
        def upsert(con: duckdb.DuckDBPyConnection) -> None:
            con.execute("DELETE FROM endpoint_deployments WHERE endpoint = ? AND name = ?",
                        [deployment.endpoint, deployment.name])
            con.execute(f"INSERT INTO endpoint_deployments ({_DEPLOYMENT_COLUMNS}) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(asdict(deployment).values()))

        return self._writer.write(operation=upsert)

    def report_state(self, endpoint: str, name: str, generation: int, state: dict) -> Future:
        """What the host saw of one generation of a deployment (a report about an older one is dropped)."""
        return self._writer.write(operation=lambda con: con.execute(
            "UPDATE endpoint_deployments SET state = ?, error_code = ?, message = ?, restarts = ?, logs = ?, "
            "updated_at = ? WHERE endpoint = ? AND name = ? AND generation = ?",
            [state["state"], state.get("error_code"), state.get("message"), int(state.get("restarts", 0)),
             state.get("logs"), _now(), endpoint, name, generation]))

    def delete_deployment(self, endpoint: str, name: str) -> Future:
        return self._writer.write(operation=lambda con: con.execute(
            "DELETE FROM endpoint_deployments WHERE endpoint = ? AND name = ?", [endpoint, name]))
