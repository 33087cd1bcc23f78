"""Semantic-convention knowledge: what OTel attributes say about HTTP, databases, messaging and peers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

Attrs = dict[str, Any]
"""Attributes by key, as the Python values the SDK held (arrays as tuples, maps as dicts)."""

CUSTOM_MEASUREMENTS = "microsoft.custom_measurements"
SAMPLE_RATE = "_MS.sampleRate"

DB_TYPES = {"mysql": "mysql", "postgresql": "postgresql", "mongodb": "mongodb", "redis": "redis"}
SQL_SYSTEMS = frozenset(("db2", "ibm.db2", "derby", "mariadb", "mssql", "microsoft.sql_server", "oracle",
                         "oracle.db", "sqlite", "other_sql", "hsqldb", "h2", "h2database"))
_DB_DEFAULT_PORTS = {"postgresql": 5432, "cassandra": 9042, "mariadb": 3306, "mysql": 3306, "mssql": 1433,
                     "microsoft.sql_server": 1433, "memcached": 11211, "db2": 50000, "ibm.db2": 50000,
                     "oracle": 1521, "oracle.db": 1521, "h2": 8082, "h2database": 8082, "derby": 1527,
                     "redis": 6379}
AZ_NAMESPACE = "az.namespace"
GEN_AI_SYSTEM = "gen_ai.system"

_STANDARD_PREFIXES = ("http.", "db.", "message.", "messaging.", "rpc.", "enduser.", "net.", "peer.",
                      "exception.", "thread.", "fass.", "code.")
_STANDARD_ATTRIBUTES = frozenset((
    "session.id", SAMPLE_RATE, CUSTOM_MEASUREMENTS,
    "client.address", "client.port", "server.address", "server.port", "url.full", "url.path",
    "url.query", "url.scheme", "url.template", "error.type", "network.local.address",
    "network.local.port", "network.protocol.name", "network.peer.address", "network.peer.port",
    "network.protocol.version", "network.transport", "user_agent.original", "user_agent.synthetic.type",
))


def is_standard_attribute(key: str) -> bool:
    return key.startswith(_STANDARD_PREFIXES) or key in _STANDARD_ATTRIBUTES


def is_synthetic(attributes: Attrs) -> bool:
    if attributes.get("user_agent.synthetic.type") in ("bot", "test"):
        return True
    agent = attributes.get("user_agent.original") or attributes.get("http.user_agent")
    return isinstance(agent, str) and "AlwaysOn" in agent


def status_code(attributes: Attrs) -> int:
    """`http.response.status_code` (or the old `http.status_code`) as an int, 0 when absent or bad."""
    code = attributes.get("http.response.status_code") or attributes.get("http.status_code")
    if not code:
        return 0
    try:
        return int(code)
    except (TypeError, ValueError, OverflowError):
        return 0


def http_method(attributes: Attrs) -> Any:
    return attributes.get("http.request.method") or attributes.get("http.method")


def is_http(attributes: Attrs) -> bool:
    return "http.request.method" in attributes or "http.method" in attributes


def location_ip(attributes: Attrs) -> Any:
    return attributes.get("client.address") or attributes.get("http.client_ip") or attributes.get("net.peer.ip")


def azure_sdk_target(attributes: Attrs) -> str | None:
    peer = attributes.get("server.address") or attributes.get("net.peer.name") or attributes.get("peer.address")
    destination = attributes.get("messaging.destination.name") or attributes.get("message_bus.destination")
    if peer and destination:
        return f"{peer}/{destination}"
    return None


def _full_url_key(attributes: Attrs) -> str | None:
    """The attribute that states the URL whole (`url.full`, else the older `http.url`), if any."""
    return next((key for key in ("url.full", "http.url") if key in attributes), None)


def request_url(attributes: Attrs) -> Any:
    """The request URL: `url.full`/`http.url`, else rebuilt from scheme, host and target."""
    if (key := _full_url_key(attributes)) is not None:
        return attributes[key]
    scheme = _http_scheme(attributes)
    target: Any = ""
    if "url.path" in attributes:
        target = attributes.get("url.path", "")
        if target and "url.query" in attributes:
            target = f"{target}?{attributes.get('url.query', '')}"
    elif "http.target" in attributes:
        target = attributes.get("http.target")
    if not (scheme and target):
        return ""
    host: Any = ""
    if "server.address" in attributes:
        host = attributes.get("server.address", "")
        if host and "server.port" in attributes:
            host = f"{host}:{attributes.get('server.port', '')}"
    elif "http.host" in attributes:
        host = attributes.get("http.host", "")
    if host:
        return f"{scheme}://{host}{target}"
    for name_attribute in ("http.server_name", "net.host.name"):
        if name_attribute in attributes:
            return f"{scheme}://{attributes[name_attribute]}:{attributes.get('net.host.port', '')}{target}"
    return ""


def _http_scheme(attributes: Attrs) -> str | None:
    scheme = attributes.get("url.scheme") or attributes.get("http.scheme")
    return str(scheme) if scheme else None


def dependency_url(attributes: Attrs) -> Any:
    if (key := _full_url_key(attributes)) is not None:
        return attributes[key]
    scheme = _http_scheme(attributes)
    if not (scheme and "http.target" in attributes):
        return ""
    target = attributes["http.target"]
    if "http.host" in attributes:
        return f"{scheme}://{attributes['http.host']}{target}"
    if "net.peer.port" in attributes:
        for host_attribute in ("net.peer.name", "net.peer.ip"):
            if host_attribute in attributes:
                return f"{scheme}://{attributes[host_attribute]}:{attributes['net.peer.port']}{target}"
    return ""


def _default_http_port(attributes: Attrs) -> int:
    return {"http": 80, "https": 443}.get(_http_scheme(attributes) or "", 0)


def http_target_and_path(attributes: Attrs, url: Any) -> tuple[Any, str]:
    """`host[:port]` (port only when not the scheme's default) and the URL path of an HTTP call."""
    default_port = _default_http_port(attributes)
    parsed = None
    path = "/"
    try:
        parsed = urlparse(url or dependency_url(attributes))
        path = parsed.path or path
    except (ValueError, TypeError, AttributeError):
        pass
    target: Any = ""
    if "server.address" in attributes:
        target = attributes["server.address"]
        port = attributes.get("server.port")
        if port and port != default_port:
            target = f"{target}:{port}"
    elif "peer.service" in attributes:
        target = attributes["peer.service"]
    elif "http.host" in attributes:
        target = _target_from_host(attributes["http.host"], default_port)
    elif parsed:
        target = _target_from_url(parsed, default_port)
    return target or peer_target(attributes), path


def _target_from_host(host: Any, default_port: int) -> Any:
    try:
        parsed = urlparse("//" + str(host))
        return parsed.hostname if parsed.port == default_port else str(host)
    except ValueError:
        return ""


def _target_from_url(parsed: Any, default_port: int) -> Any:
    try:
        port = parsed.port
    except ValueError:
        port = None
    if port and port == default_port:
        return parsed.hostname or ""
    return parsed.netloc or ""


def peer_target(attributes: Attrs) -> Any:
    """Target from `peer.service`, else `net.peer.name|ip[:port]` (port only when not a default)."""
    if "peer.service" in attributes:
        return attributes["peer.service"]
    target: Any = ""
    if "net.peer.name" in attributes:
        target = attributes["net.peer.name"]
    elif "net.peer.ip" in attributes:
        target = attributes["net.peer.ip"]
    if "net.peer.port" in attributes:
        port = attributes["net.peer.port"]
        db_system = attributes.get("db.system.name") or attributes.get("db.system")
        if port != _default_http_port(attributes) and port != _DB_DEFAULT_PORTS.get(str(db_system), 0):
            target = f"{target}:{port}"
    return target


def db_target(target: Any, db_system: Any, attributes: Attrs) -> Any:
    """`server[:port]|database`, falling back to the database name, then the system."""
    if not target and attributes.get("server.address"):
        target = str(attributes["server.address"])
        port = attributes.get("server.port")
        if port and port != _DB_DEFAULT_PORTS.get(str(db_system), 0):
            target = f"{target}:{port}"
    db_name = attributes.get("db.namespace") or attributes.get("db.name")
    if db_name:
        return f"{target}|{db_name}" if target else str(db_name)
    return target or db_system


def messaging_target(attributes: Attrs, target: Any) -> Any:
    if target:
        return target
    for attribute in ("messaging.destination", "messaging.system"):
        if attribute in attributes:
            return str(attributes[attribute])
    return target
