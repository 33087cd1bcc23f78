"""The HTTP surface (#14, items 7, 8, 9 and TLS): bodies bounded in size and time before any route
authenticates or parses, connections bounded in number, header size and header time, the
instrumentation key limited to appending, and HTTPS with a certificate a real client verifies.

Scaled to this machine: a 256-descriptor collector against 300 half-open connections stands for
20,600 against the default limit; 64 MiB streamed bodies stand for 200 MiB."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import resource
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from collector_process import NO_PHONE_HOME, CollectorProcess, free_port

from collector.client import LocalWebservice, Webservice, Workspace

HEADER_TIMEOUT_S = 3
BODY_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def bounded(tmp_path_factory):
    """A collector with short header and body deadlines and 100 connections at most."""
    process = CollectorProcess(tmp_path_factory.mktemp("bounded") / "data", env={
        "INSIGHTS_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S), "INSIGHTS_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "INSIGHTS_MAX_CONNECTIONS": "100"}).start()
    yield process
    process.stop()


def connect(collector, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", collector.port), timeout=timeout)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    return sock


def response_of(sock: socket.socket) -> tuple[int, bytes]:
    """(status, body) of the one response on `sock`, read until the server closes or the body ends."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), data[:200]
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), None)
    while length is not None and len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split()[1]), body


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes `sock` (after what it may still say) within `within` seconds."""
    sock.settimeout(within)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


def rss(collector) -> int:
    return psutil.Process(collector.process.pid).memory_info().rss


# --- item 7: bodies bounded before authentication or parsing ---------------------------------------

JSON_ROUTES = [("POST", "/api/services"), ("PATCH", "/api/services/anything"), ("POST", "/api/wrapper/heartbeat"),
               ("PUT", "/api/services/anything/export"), ("POST", "/api/dashboard/tokens")]


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
def test_a_declared_oversized_body_is_refused_unread_and_unauthenticated(bounded, method, path):
    with connect(bounded, timeout=5) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                     f"content-length: {200 * 2**20}\r\n\r\n".encode() + b"[" * 65536)
        status, body = response_of(sock)  # old code: waits for 200 MiB that never come
    assert status == 413
    assert f"limit of 65536 bytes for {method} {path}" in json.loads(body)["detail"]


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES[:3] + [("POST", "/v1/apps/default/query")])
def test_a_streamed_body_is_cut_at_its_limit_and_holds_no_memory(bounded, method, path):
    """Chunked bodies declare no length: they are counted as they come and refused at the limit,
    with the right keys too; the collector neither reads on nor grows (the issue saw 243 -> 835 MiB
    for 200 MiB)."""
    service = bounded.create_service("stream")
    before = rss(bounded)
    sent = 0
    chunk = b"[" * (256 * 2**10)
    with connect(bounded, timeout=10) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                     f"x-api-key: {bounded.admin_key}\r\nx-instrumentation-key: {service['instrumentation_key']}\r\n"
                     "transfer-encoding: chunked\r\n\r\n".encode())

        def stream():
            nonlocal sent
            try:
                while sent < 64 * 2**20:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
            except OSError:
                pass  # the server closed: what it wanted

        sender = threading.Thread(target=stream, daemon=True)
        sender.start()
        status, body = response_of(sock)
        assert closed_by_server(sock, within=5)
        sender.join(timeout=10)
    assert status == 413, body
    assert "exceeds the limit" in json.loads(body)["detail"]
    assert sent < 16 * 2**20, f"the collector read on to {sent} bytes"
    assert rss(bounded) - before < 48 * 2**20


@pytest.mark.parametrize("path", ["/api/services", "/api/wrapper/heartbeat"])
def test_a_request_without_a_key_is_refused_before_its_body_is_read(bounded, path):
    with connect(bounded, timeout=5) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                     "content-length: 4000\r\n\r\n{".encode())  # the rest never comes
        status, body = response_of(sock)
    assert status == 401, body


def test_a_body_that_does_not_arrive_in_time_is_a_408(bounded):
    service = bounded.create_service("slow")
    started = time.monotonic()
    with connect(bounded, timeout=BODY_TIMEOUT_S + 8) as sock:
        sock.sendall(b"POST /v2.1/track HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                     b"content-length: 4000\r\n\r\n[")
        status, body = response_of(sock)
        assert closed_by_server(sock, within=2)
    assert status == 408 and f"did not arrive within {BODY_TIMEOUT_S} s" in json.loads(body)["detail"]
    assert time.monotonic() - started < BODY_TIMEOUT_S + 3
    message = {"iKey": service["instrumentation_key"], "time": "2026-11-23T16:53:49Z", "name": "Message",
               "data": {"baseType": "MessageData", "baseData": {"message": "still here"}}}
    assert bounded.http.post("/v2.1/track", json=[message]).json()["itemsAccepted"] == 1


def test_ingestion_keeps_its_own_limit_and_shape(bounded):
    with connect(bounded, timeout=5) as sock:
        sock.sendall(b"POST /v2.1/track HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\n\r\n[" % (33 * 2**20))
        status, body = response_of(sock)
    assert status == 413 and "33554432 bytes" in json.loads(body)["errors"][0]["message"]


# --- item 8: slow clients --------------------------------------------------------------------------

def test_half_open_connections_neither_exhaust_descriptors_nor_stop_answers(bounded):
    """300 connections that never finish their headers, against a collector with 256 descriptors
    (the old collector stopped accepting: every route failed). The cap closes the oldest idle ones
    to make room, the header deadline closes the rest, and /healthz and ingestion answer throughout."""
    resource.prlimit(bounded.process.pid, resource.RLIMIT_NOFILE, (256, 256))
    service = bounded.create_service("half-open")
    message = {"iKey": service["instrumentation_key"], "time": "2026-11-23T16:53:49Z", "name": "Message",
               "data": {"baseType": "MessageData", "baseData": {"message": "through"}}}
    half_open = []
    try:
        for _ in range(300):
            sock = connect(bounded)
            sock.sendall(b"POST /v2.1/track HTTP/1.1\r\nHost: x\r\n")
            half_open.append(sock)
        with httpx.Client(base_url=bounded.url, timeout=3) as client:
            assert client.get("/healthz").status_code == 200
            assert client.post("/v2.1/track", json=[message]).json()["itemsAccepted"] == 1
        deadline = time.monotonic() + HEADER_TIMEOUT_S + 3
        still_open = [s for s in half_open if not closed_by_server(s, max(deadline - time.monotonic(), 0.01))]
        assert not still_open, f"{len(still_open)} of 300 half-open connections outlived the header deadline"
    finally:
        for sock in half_open:
            sock.close()


def test_trickled_headers_are_closed_at_the_header_deadline(bounded):
    """A header line now and then used to keep a connection for ever (each byte disarmed uvicorn's
    keep-alive timer, and nothing else timed the headers)."""
    with connect(bounded) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for index in range(HEADER_TIMEOUT_S * 2 + 4):
            time.sleep(0.5)
            try:
                sock.sendall(b"x-slow-%d: 1\r\n" % index)
            except OSError:
                break
        assert closed_by_server(sock, within=2)
        assert time.monotonic() - started < HEADER_TIMEOUT_S + 3


def test_headers_past_their_limit_are_a_431(bounded):
    with connect(bounded, timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            for index in range(40):
                sock.sendall(b"x-filler-%d: %s\r\n" % (index, b"a" * 4000))
        except OSError:
            pass
        status, _ = response_of(sock)
    assert status == 431


# --- item 9: what the instrumentation key alone may do ---------------------------------------------

def heartbeat(collector, service: dict, key: str | None = None, **report) -> httpx.Response:
    headers = {"x-instrumentation-key": service["instrumentation_key"], **({"x-api-key": key} if key else {})}
    body = {"instance": "host:5001", "state": "Healthy", "scoring_uri": "http://host:5001/score", **report}
    return collector.http.post("/api/wrapper/heartbeat", json=body, headers=headers)


def test_the_instrumentation_key_alone_sets_no_state_and_no_scoring_uri(app_collector):
    service, other = app_collector.create_service("truth"), app_collector.create_service("other")
    forged = heartbeat(app_collector, service, scoring_uri="http://attacker.example/score")
    assert forged.status_code == 200
    assert forged.json()["verified"] is False and forged.json()["enable_app_insights"] is True  # the switch still
    with app_collector.admin as admin:
        state = admin.get(f"/api/services/{service['name']}/state").json()
        assert (state["state"], state["scoring_uri"], state["instances"]) == ("Unknown", None, [])
        assert "instrumentation key alone" in state["detail"]
        assert [i["scoring_uri"] for i in state["unverified_instances"]] == ["http://attacker.example/score"]

        assert heartbeat(app_collector, service, key=service["api_key"]).json()["verified"] is True
        state = admin.get(f"/api/services/{service['name']}/state").json()
        assert (state["state"], state["scoring_uri"]) == ("Healthy", "http://host:5001/score")
        assert heartbeat(app_collector, service, key=app_collector.admin_key).json()["verified"] is True

    assert heartbeat(app_collector, service, key=other["api_key"]).status_code == 403
    assert heartbeat(app_collector, service, key="not-a-key").status_code == 401
    assert app_collector.http.post("/api/wrapper/heartbeat", json={"instance": "h", "state": "Healthy"}).status_code == 401
    bad = heartbeat(app_collector, service, key=service["api_key"], state="Splendid")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "state"]


def test_console_lines_with_the_instrumentation_key_alone_push_out_no_verified_line(app_collector, monkeypatch):
    from collector.store import console

    monkeypatch.setattr(console, "MAX_LINES_PER_SERVICE", 5)
    service = app_collector.create_service("console")

    def send(lines: list[str], key: str | None = None) -> httpx.Response:
        headers = {"x-instrumentation-key": service["instrumentation_key"], **({"x-api-key": key} if key else {})}
        body = b"".join(json.dumps({"stream": "stdout", "line": line}).encode() + b"\n" for line in lines)
        return app_collector.http.post("/api/logs", content=body, headers=headers)

    assert send(["real 1", "real 2", "real 3"], key=service["api_key"]).json()["accepted"] == 3
    assert send([f"flood {i}" for i in range(40)]).json()["accepted"] == 40
    with app_collector.admin as admin:
        lines = admin.get(f"/api/services/{service['name']}/logs", params={"lines": 100}).json()["lines"]
    assert [(entry["line"], entry["verified"]) for entry in lines] == (
        [("real 1", True), ("real 2", True), ("real 3", True)] + [(f"flood {i}", False) for i in range(35, 40)])
    assert send(["x"], key="not-a-key").status_code == 401


SCRIPT = '''
def init():
    print("init done")


def run(raw_data):
    return {"ok": True}
'''


def test_wrappers_vouch_with_the_key_they_have_and_without_one_still_ship(collector, tmp_path):
    """`insights score` started by the SDK with the service's API key sets the state users read;
    one with only a connection string still sends console lines and beats, listed as unverified."""
    script = tmp_path / "score.py"
    script.write_text(SCRIPT)
    created = collector.create_service("vouch")
    workspace = Workspace(collector.url, api_key=created["api_key"])
    port = free_port()
    env = {**os.environ, **NO_PHONE_HOME, "APPLICATIONINSIGHTS_CONNECTION_STRING": created["connection_string"],
           "INSIGHTS_DATA_DIR": str(tmp_path / "nowhere")}
    env.pop("INSIGHTS_API_KEY", None)
    bare = subprocess.Popen([sys.executable, "-m", "scoring", "score", "--entry_script", str(script), "--port", str(port),
                             "--host", "127.0.0.1", "--spool_dir", str(tmp_path / "bare-spool")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    service = LocalWebservice.deploy(workspace, created["name"], script, spool_dir=tmp_path / "spool")
    try:
        remote = Webservice(workspace, created["name"])
        assert _until(lambda: remote.wrapper_state()["state"] == "Healthy"), remote.wrapper_state()
        assert _until(lambda: [i["instance"].rpartition(":")[2] for i in remote.wrapper_state()["unverified_instances"]]
                      == [str(port)]), remote.wrapper_state()
        assert remote.scoring_uri == f"http://127.0.0.1:{service.port}/score"
        logs = lambda: workspace.request("GET", f"/api/services/{created['name']}/logs").json()["lines"]  # noqa: E731
        assert _until(lambda: {e["verified"] for e in logs() if "init done" in e["line"]} == {True, False}), logs()
    finally:
        service.delete()
        bare.terminate()
        bare.wait(timeout=30)


def _until(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


# --- TLS -------------------------------------------------------------------------------------------

def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "insights test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class TlsCollector(CollectorProcess):
    """CollectorProcess over HTTPS, its clients trusting the test's certificate."""

    def __init__(self, data_dir: Path, cert: Path, key: Path):
        super().__init__(data_dir, env={"INSIGHTS_TLS_CERT": str(cert), "INSIGHTS_TLS_KEY": str(key)})
        self.url = f"https://127.0.0.1:{self.port}"
        self.trust = ssl.create_default_context(cafile=str(cert))

    def start(self, timeout: float = 30.0) -> TlsCollector:
        env = {**os.environ, "INSIGHTS_API_KEY": self.admin_key, **NO_PHONE_HOME, **self.extra_env}
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "collector", "up", "--no-dashboard", "--data-dir",
                                         str(self.data_dir), "--port", str(self.port)], env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        assert _until(self._answers, timeout), self.log_path.read_text()[-2000:]
        return self

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", verify=self.trust, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def client(self, headers: dict | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, verify=self.trust)


def test_up_serves_https_that_a_verifying_client_trusts(tmp_path):
    cert, key = self_signed(tmp_path)
    collector = TlsCollector(tmp_path / "data", cert, key).start()
    try:
        service = collector.create_service("tls")
        assert f";IngestionEndpoint=https://127.0.0.1:{collector.port}/;" in service["connection_string"]
        message = {"iKey": service["instrumentation_key"], "time": "2026-11-23T16:53:49Z", "name": "Message",
                   "data": {"baseType": "MessageData", "baseData": {"message": "over tls"}}}
        assert collector.http.post("/v2.1/track", json=[message]).json()["itemsAccepted"] == 1
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{collector.url}/healthz", timeout=5)  # the system's CAs do not know it
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{collector.port}/healthz", timeout=5)  # no plain HTTP beside it
    finally:
        collector.stop()


def test_up_says_what_is_wrong_with_a_certificate(tmp_path):
    env = {**os.environ, **NO_PHONE_HOME}
    result = subprocess.run([sys.executable, "-m", "collector", "up", "--no-dashboard", "--data-dir", str(tmp_path / "d"),
                             "--port", str(free_port()), "--tls-cert", str(tmp_path / "missing.pem"), "--tls-key",
                             str(tmp_path / "missing.key")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "cannot serve HTTPS with certificate" in result.stderr and "missing.pem" in result.stderr
