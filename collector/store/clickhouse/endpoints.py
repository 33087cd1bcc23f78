"""Online endpoints kept in ClickHouse: store/endpoints.py's EndpointStore (same methods, same
dataclasses) for N collectors, so that an endpoint created, re-split, re-keyed or deployed through
one collector is what every other shows and what the collector running its host applies.

Four tables, declared here (registered and created by tables.py, as every store table):
- `endpoints`, one row per change of an endpoint (a ReplacingMergeTree keyed by name, read with
  FINAL, a delete a row with `is_deleted = 1`);
- `endpoint_deployments`, one row per change of a deployment's definition, keyed by (endpoint,
  name) likewise, each row carrying its endpoint's `created_at`: a deployment belongs to that
  incarnation of the endpoint only, so an endpoint deleted on one collector while a deployment is
  put on another, then created again, does not inherit the stray;
- `endpoint_deployment_states`, what the host reports of a deployment, keyed by (endpoint, name,
  `defined`), where `defined` is the version of the definition reported on: a report is stored only
  if its generation is the current definition's (one INSERT ... SELECT, so an older generation's
  report is dropped, as on DuckDB), and a re-created deployment starts over as Provisioning;
- `endpoint_placement`, where the hosts run (the holder of the endpoints lease, endpoints/lease.py,
  writes its advertised address when it takes over): the scoring URI names it.
Every version is the *server's* clock in microseconds (`now64`), so collectors' clocks may disagree;
two changes to one endpoint at once keep the later one whole (admin actions, rare; each answer says
what it set). A change is an INSERT ... SELECT from the current row where it must still exist, so
an update racing a delete does not resurrect the endpoint.

Reads come from a snapshot of all endpoints that is reloaded when older than REFRESH_S (a host
polls its definition five times a second; reloading on demand keeps that to two queries per
REFRESH_S whatever the number of endpoints). A write through this collector drops the snapshot, so
this collector reads its own writes at once; another collector sees them within REFRESH_S. While
the store cannot be read, the last snapshot answers: the hosts keep serving what they were told.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from concurrent.futures import Future
from datetime import datetime
from typing import Any

from collector.store.clickhouse import control
from collector.store.endpoints import Deployment, Endpoint

log = logging.getLogger(__name__)

REFRESH_S = 0.5
"""How stale a collector's view of endpoints may be (a change made elsewhere applies after this)."""
PLACEMENT = "endpoints"
"""The placement row's key: the name of the lease under which endpoint hosts run."""

_VERSION = "toUInt64(toUnixTimestamp64Micro(now64(6)))"

TABLES: dict[str, control.TableSpec] = {
    "endpoints": (
        "name String, port UInt16, primary_key String, secondary_key String, traffic String, mirror String, "
        "rate_limit UInt32, request_timeout_ms UInt32, created_at DateTime64(6, 'UTC'), version UInt64, "
        "is_deleted UInt8",
        "ReplacingMergeTree", "version, is_deleted", "ORDER BY name"),
    "endpoint_deployments": (
        "endpoint String, name String, endpoint_created DateTime64(6, 'UTC'), entry_script String, "
        "model_dir Nullable(String), instance_count UInt16, max_concurrent UInt16, generation UInt32, "
        "updated_at DateTime64(6, 'UTC'), version UInt64, is_deleted UInt8",
        "ReplacingMergeTree", "version, is_deleted", "ORDER BY (endpoint, name)"),
    "endpoint_deployment_states": (
        "endpoint String, name String, defined UInt64, state LowCardinality(String), error_code Nullable(String), "
        "message Nullable(String), restarts UInt32, logs Nullable(String), updated_at DateTime64(6, 'UTC'), "
        "version UInt64",
        "ReplacingMergeTree", "version", "ORDER BY (endpoint, name, defined)"),
    "endpoint_placement": (
        "lease String, address String, holder String, version UInt64",
        "ReplacingMergeTree", "version", "ORDER BY lease"),
}

def _micros_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


class EndpointStore:
    """store/endpoints.py's EndpointStore over ClickHouse (see the module docstring). Writes return
    futures that resolve once ClickHouse acknowledged them (control.submit)."""

    def __init__(self, connection: control.Connection, refresh_s: float = REFRESH_S) -> None:
        self._connection = connection
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._snapshot: dict[str, Endpoint] = {}
        self._address = "127.0.0.1"
        self._loaded_at = float("-inf")
        self._loaded = False

    # reads --------------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._current())

    def get(self, name: str) -> Endpoint | None:
        found = self._current().get(name)
        return copy.deepcopy(found) if found is not None else None

    def _current(self) -> dict[str, Endpoint]:
        """The snapshot, reloaded if older than the refresh time. While the store cannot be read the
        last snapshot answers (hosts keep serving what they were told; a change waits for the store),
        retried every refresh time; before any load the error is raised."""
        with self._lock:
            if time.monotonic() - self._loaded_at >= self._refresh_s:
                started = time.monotonic()
                try:
                    self._snapshot = self._load()
                    self._loaded = True
                except Exception as error:  # noqa: BLE001 - the store may be away: answer the last view
                    if not self._loaded:
                        raise
                    log.warning("endpoints: could not reload from the store (answering the last view): %s", error)
                self._loaded_at = started
            return self._snapshot

    def _load(self) -> dict[str, Endpoint]:
        client, settings = self._connection.client(), control.read_settings(self._connection)
        endpoints = {row[0]: Endpoint(row[0], int(row[1]), row[2], row[3], json.loads(row[4]), json.loads(row[5]),
                                      int(row[6]), int(row[7]), _naive(row[8]))
                     for row in client.query(
                         f"SELECT name, port, primary_key, secondary_key, traffic, mirror, rate_limit, "
                         f"request_timeout_ms, created_at FROM {self._table('endpoints')} FINAL WHERE NOT is_deleted",
                         settings=settings).result_rows}
        for created, deployment in self._deployments(client, settings):
            endpoint = endpoints.get(deployment.endpoint)
            if endpoint is not None and endpoint.created_at == created:
                endpoint.deployments.append(deployment)
        placed = client.query(f"SELECT address FROM {self._table('endpoint_placement')} FINAL "
                              "WHERE lease = {lease:String}", parameters={"lease": PLACEMENT},
                              settings=settings).result_rows
        address = placed[0][0] if placed else self._address
        for endpoint in endpoints.values():
            endpoint.deployments.sort(key=lambda d: d.name)
            endpoint.address = address
        return endpoints

    def _deployments(self, client: Any, settings: dict) -> list[tuple[datetime, Deployment]]:
        rows = client.query(
            "SELECT d.endpoint_created, d.endpoint, d.name, d.entry_script, d.model_dir, d.instance_count, "
            "d.max_concurrent, d.generation, s.state, s.error_code, s.message, s.restarts, s.logs, "
            "if(s.state IS NULL, d.updated_at, s.updated_at) "
            f"FROM (SELECT * FROM {self._table('endpoint_deployments')} FINAL WHERE NOT is_deleted) AS d "
            f"LEFT JOIN (SELECT * FROM {self._table('endpoint_deployment_states')} FINAL) AS s "
            "ON s.endpoint = d.endpoint AND s.name = d.name AND s.defined = d.version",
            settings={**settings, "join_use_nulls": 1}).result_rows
        return [(_naive(created), Deployment(endpoint, name, script, model_dir, int(instances), int(concurrent),
                                             int(generation), state or "Provisioning", error_code, message,
                                             int(restarts or 0), logs, _naive(updated)))
                for (created, endpoint, name, script, model_dir, instances, concurrent, generation, state, error_code,
                     message, restarts, logs, updated) in rows]

    # writes -------------------------------------------------------------------------------------

    def create(self, endpoint: Endpoint) -> Future:
        return self._write(
            f"INSERT INTO {self._table('endpoints')} (name, port, primary_key, secondary_key, traffic, mirror, "
            "rate_limit, request_timeout_ms, created_at, version, is_deleted) SELECT {name:String}, {port:UInt16}, "
            "{primary:String}, {secondary:String}, {traffic:String}, {mirror:String}, {rate_limit:UInt32}, "
            f"{{timeout_ms:UInt32}}, {{created:DateTime64(6, 'UTC')}}, {_VERSION}, 0",
            name=endpoint.name, port=endpoint.port, primary=endpoint.primary_key, secondary=endpoint.secondary_key,
            traffic=json.dumps(endpoint.traffic), mirror=json.dumps(endpoint.mirror), rate_limit=endpoint.rate_limit,
            timeout_ms=endpoint.request_timeout_ms, created=_micros_text(endpoint.created_at))

    def update(self, endpoint: Endpoint) -> Future:
        """Traffic, mirror, limits and keys as `endpoint` has them (if it still exists)."""
        table = self._table("endpoints")
        return self._write(
            f"INSERT INTO {table} (name, port, primary_key, secondary_key, traffic, mirror, rate_limit, "
            "request_timeout_ms, created_at, version, is_deleted) SELECT name, port, {primary:String}, "
            "{secondary:String}, {traffic:String}, {mirror:String}, {rate_limit:UInt32}, {timeout_ms:UInt32}, "
            f"created_at, {_VERSION}, 0 FROM {table} FINAL WHERE name = {{name:String}} AND NOT is_deleted",
            name=endpoint.name, primary=endpoint.primary_key, secondary=endpoint.secondary_key,
            traffic=json.dumps(endpoint.traffic), mirror=json.dumps(endpoint.mirror), rate_limit=endpoint.rate_limit,
            timeout_ms=endpoint.request_timeout_ms)

    def delete(self, name: str) -> Future:
        deployments = self._table("endpoint_deployments")
        return self._write(
            f"INSERT INTO {deployments} (endpoint, name, endpoint_created, version, is_deleted) "
            f"SELECT endpoint, name, endpoint_created, {_VERSION}, 1 FROM {deployments} FINAL "
            "WHERE endpoint = {name:String} AND NOT is_deleted",
            f"INSERT INTO {self._table('endpoints')} (name, version, is_deleted) SELECT {{name:String}}, {_VERSION}, 1",
            name=name)

    def put_deployment(self, deployment: Deployment) -> Future:
        """Insert or replace the deployment's definition; it starts over as Provisioning."""
        return self._write(
            f"INSERT INTO {self._table('endpoint_deployments')} (endpoint, name, endpoint_created, entry_script, "
            "model_dir, instance_count, max_concurrent, generation, updated_at, version, is_deleted) "
            "SELECT name, {deployment:String}, created_at, {script:String}, {model_dir:Nullable(String)}, "
            f"{{instances:UInt16}}, {{concurrent:UInt16}}, {{generation:UInt32}}, now64(6), {_VERSION}, 0 "
            f"FROM {self._table('endpoints')} FINAL WHERE name = {{endpoint:String}} AND NOT is_deleted",
            endpoint=deployment.endpoint, deployment=deployment.name, script=deployment.entry_script,
            model_dir=deployment.model_dir, instances=deployment.instance_count,
            concurrent=deployment.max_concurrent, generation=deployment.generation)

    def report_state(self, endpoint: str, name: str, generation: int, state: dict) -> Future:
        """What the host saw of one generation of a deployment (a report about an older one is dropped)."""
        return self._write(
            f"INSERT INTO {self._table('endpoint_deployment_states')} (endpoint, name, defined, state, error_code, "
            "message, restarts, logs, updated_at, version) SELECT endpoint, name, version, {state:String}, "
            "{error_code:Nullable(String)}, {message:Nullable(String)}, {restarts:UInt32}, {logs:Nullable(String)}, "
            f"now64(6), {_VERSION} FROM {self._table('endpoint_deployments')} FINAL WHERE endpoint = {{endpoint:String}} "
            "AND name = {name:String} AND generation = {generation:UInt32} AND NOT is_deleted",
            endpoint=endpoint, name=name, generation=generation, state=state["state"],
            error_code=state.get("error_code"), message=state.get("message"),
            restarts=int(state.get("restarts", 0)), logs=state.get("logs"))

    def delete_deployment(self, endpoint: str, name: str) -> Future:
        return self._write(
            f"INSERT INTO {self._table('endpoint_deployments')} (endpoint, name, version, is_deleted) "
            f"SELECT {{endpoint:String}}, {{name:String}}, {_VERSION}, 1", endpoint=endpoint, name=name)

    def place(self, address: str, holder: str = "") -> None:
        """Record that endpoint hosts now run at `address` (the lease holder calls this when it takes
        over; every collector's scoring URIs name it from its next reload)."""
        self._address = address
        self._write(f"INSERT INTO {self._table('endpoint_placement')} (lease, address, holder, version) "
                    f"SELECT {{lease:String}}, {{address:String}}, {{holder:String}}, {_VERSION}",
                    lease=PLACEMENT, address=address, holder=holder).result()

    def _table(self, name: str) -> str:
        return control.table(self._connection, name)

    def _write(self, *statements: str, **parameters: Any) -> Future:
        """Run the statements in order off the event loop; this collector's next read reloads."""
        def run() -> None:
            client = self._connection.client()
            for statement in statements:
                client.command(statement, parameters=parameters, settings=control.write_settings(self._connection))
            self._drop_snapshot()

        return control.submit(run)

    def _drop_snapshot(self) -> None:
        with self._lock:
            self._loaded_at = float("-inf")
