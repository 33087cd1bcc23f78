"""The endpoint host: one process per endpoint (started by the collector, see keeper.py) that serves
the endpoint's scoring URI with the router and runs each deployment's wrapper.

Every POLL_S it reads the endpoint's definition from the collector and applies it: deployments
added or re-created start, removed ones stop (after their requests in flight), and the routing
table is rebuilt and swapped in whole, so a traffic change takes effect within POLL_S with no
request dropped. It reports each deployment's state back to the collector when it changes. It exits
when the endpoint is deleted, on SIGTERM (stopping its wrappers gracefully), or when the collector
that started it is gone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx

from collector.client import resolve_collector
from endpoints.deployment import DeploymentRunner
from endpoints.router import Router, Table
from endpoints.telemetry import RouterTelemetry
from scoring.sender import tls_verify

log = logging.getLogger("endpoints.host")

POLL_S = 0.2
READ_STAMP = "x-read-stamp"
"""The collector stamps each read of the definition with this header ..."""
APPLIED_READ = "x-applied-read"
"""... and the host sends back the stamp of the latest read its router runs on, so that a change's
request returns once the change is in force (EndpointExtension.applied)."""


class EndpointHost:
    def __init__(self, name: str, data_dir: Path, address: str = "127.0.0.1"):
        self.name = name
        self.address = address
        self.data_dir = Path(data_dir)
        connection = resolve_collector()
        self.verify = tls_verify()  # SSL_CERT_FILE, as every client of an HTTPS collector reads it
        self.client = httpx.AsyncClient(base_url=connection.url, headers={"x-api-key": connection.api_key or ""},
                                        timeout=10, trust_env=False, verify=self.verify)
        self.collector_url = connection.url
        self.runners: dict[str, DeploymentRunner] = {}
        self.router: Router | None = None
        self.spec: dict | None = None
        self.in_force: tuple[dict | None, str] = (None, "")
        """The definition the router runs on, and the stamp of the read that brought it."""
        self.unreachable = False
        self.tasks: set[asyncio.Task] = set()
        self.stopping = asyncio.Event()
        self.parent = os.getppid()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        changes: asyncio.Queue = asyncio.Queue()

        def stop() -> None:
            self.stopping.set()
            changes.put_nowait(None)

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop)
        spec = await self._spec()
        if spec is None:
            return 0
        service = (await self.client.get(f"/api/services/{self.name}")).json()
        key = service["instrumentation_key"]
        telemetry = RouterTelemetry(self.name, key, self.collector_url).start()
        self.router = Router(telemetry)
        server = await self.router.serve(self.address, spec["port"])
        log.warning("endpoint %s: router on %s port %d", self.name, self.address, spec["port"])
        watcher = threading.Thread(target=self._watch, args=(loop, changes, spec), name="spec-watch", daemon=True)
        watcher.start()
        read: tuple[dict, str] | None = (spec, "")
        try:
            while read is not None and not self.stopping.is_set() and os.getppid() == self.parent:
                await self._apply(read[0])
                self.in_force = read
                read = await changes.get()
        finally:
            self.stopping.set()
            server.close()
            await asyncio.gather(*(runner.stop() for runner in self.runners.values()))
            self.router.close()
            telemetry.stop()
            await self.client.aclose()
        return 0

    def _watch(self, loop: asyncio.AbstractEventLoop, changes: asyncio.Queue, last: dict | None) -> None:
        """Read the definition every POLL_S, in a thread of its own (an HTTP call on the event loop
        would hold up requests); hand it to the loop when it changed, or every second (so that
        deployment states are compared and re-reported), None when the endpoint is gone. A read
        equal to the definition in force is in force at once."""
        with httpx.Client(base_url=self.collector_url, headers=self.client.headers, timeout=10, trust_env=False,
                          verify=self.verify) as client:
            unchanged = 0
            while not self.stopping.is_set():
                time.sleep(POLL_S)
                if os.getppid() != self.parent:  # the collector that started this host is gone
                    loop.call_soon_threadsafe(changes.put_nowait, None)
                    return
                known, spec, stamp = self._read(client)
                if not known:
                    continue
                unchanged = unchanged + 1 if spec == last else 0
                if spec != last or unchanged * POLL_S >= 1:
                    last = spec
                    loop.call_soon_threadsafe(changes.put_nowait, (spec, stamp) if spec is not None else None)
                    if spec is None:
                        return
                elif spec == self.in_force[0]:
                    self.in_force = (spec, stamp)

    def _read(self, client: httpx.Client) -> tuple[bool, dict | None, str]:
        """(whether the collector said, the definition: None once deleted, the read's stamp)."""
        try:
            response = client.get(f"/api/endpoints/{self.name}", params={"keys": "true"},
                                  headers={APPLIED_READ: self.in_force[1]})
        except httpx.HTTPError as error:
            if not self.unreachable:  # once per outage; the router keeps serving meanwhile
                log.warning("collector unreachable (serving on the last definition): %s", error)
            self.unreachable = True
            return False, None, ""
        self.unreachable = False
        if response.status_code == 404:
            return True, None, ""
        if response.status_code != 200:
            return False, None, ""
        return True, response.json(), response.headers.get(READ_STAMP, "")

    async def _spec(self) -> dict | None:
        """The endpoint's definition; None once it is deleted. Retries while the collector is away."""
        while not self.stopping.is_set():
            try:
                response = await self.client.get(f"/api/endpoints/{self.name}", params={"keys": "true"})
            except httpx.HTTPError as error:
                log.warning("collector unreachable: %s", error)
            else:
                if response.status_code == 404:
                    return None
                if response.status_code == 200:
                    return response.json()
                log.warning("collector answered %d: %s", response.status_code, response.text[:200])
            if os.getppid() != self.parent:
                return None
            await asyncio.sleep(1)
        return None

    async def _apply(self, spec: dict) -> None:
        self.spec = spec
        wanted = {d["name"]: d for d in spec["deployments"]}
        for name, runner in list(self.runners.items()):
            if name not in wanted or wanted[name]["generation"] != runner.generation:
                del self.runners[name]
                self._background(runner.stop())  # its requests in flight finish meanwhile
        for name, deployment in wanted.items():
            if name not in self.runners:
                self.runners[name] = DeploymentRunner(self.name, deployment, self.data_dir, self._changed).begin()
            elif deployment["state"] != self.runners[name].state["state"]:
                self._changed(self.runners[name])  # the collector missed a report: say it again
        self.router.table = _table(spec, self.runners)  # type: ignore[union-attr]

    def _changed(self, runner: DeploymentRunner) -> None:
        """A deployment's state changed: route by it at once, and tell the collector."""
        if self.router is not None and self.spec is not None:
            self.router.table = _table(self.spec, self.runners)
        body = {"generation": runner.generation, **runner.state}
        self._background(self._report(runner.name, body))

    def _background(self, work) -> None:
        """Run `work` on the loop, holding its task until it is done (the loop keeps only a weak one)."""
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _report(self, deployment: str, body: dict) -> None:
        try:
            await self.client.put(f"/api/endpoints/{self.name}/deployments/{deployment}/state", json=body)
        except httpx.HTTPError as error:
            log.warning("state of %s not reported: %s", deployment, error)


def _table(spec: dict, runners: dict[str, DeploymentRunner]) -> Table:
    upstreams = {name: runner.upstream for name, runner in runners.items() if runner.upstream is not None}
    bounds: list[float] = []
    chosen = []
    total = 0.0
    for name, share in sorted(spec["traffic"].items()):
        if share > 0 and name in upstreams:
            total += share
            bounds.append(total)
            chosen.append(upstreams[name])
    mirror = tuple((float(share), upstreams[name]) for name, share in sorted(spec["mirror"].items())
                   if share > 0 and name in upstreams)
    keys = (spec["primary_key"].encode(), spec["secondary_key"].encode())
    return Table(keys, upstreams, (tuple(bounds), tuple(chosen)), mirror, float(spec["rate_limit"]),
                 spec["request_timeout_ms"] / 1000)


def main(name: str, data_dir: Path, address: str = "127.0.0.1") -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s [endpoint host] %(message)s")
    sys.setswitchinterval(0.0005)  # the telemetry and watch threads give the router the GIL back within 0.5 ms
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(EndpointHost(name, data_dir, address).run())
