"""A guard that refuses, at the socket, every connection outside the loopback, before a packet
leaves, and writes down each attempt: run a child Python with `environment(log)` and read
`attempts(log)` afterwards. Used to prove that an SDK set up as the README says calls nowhere but
the collector on 127.0.0.1.

It is a `sitecustomize` module on PYTHONPATH, so it is in force before the child imports anything:
`socket.getaddrinfo` (name lookups, which `create_connection`, urllib3 and httpx all go through)
refuses a name that is not the loopback's, and `socket.socket.connect`/`connect_ex`/`sendto`
refuse an address that is not 127.0.0.0/8 or ::1 (AF_UNIX and socketpairs are local and pass).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

LOG_VAR = "NET_GUARD_LOG"

SITECUSTOMIZE = r'''
import errno, ipaddress, json, os, socket, traceback

_LOG = os.environ.get("NET_GUARD_LOG")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _loopback(host):
    if host is None:
        return True  # getaddrinfo(None, port): the local wildcard, a bind not a connect
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").split("%")[0]
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse(kind, target):
    stack = [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_stack()[:-2]][-12:]
    if _LOG:
        with open(_LOG, "a") as log:
            log.write(json.dumps({"kind": kind, "target": repr(target), "pid": os.getpid(), "stack": stack}) + "\n")
    raise OSError(errno.ECONNREFUSED, f"net_guard: refused {kind} to {target!r} (only the loopback is allowed)")


_getaddrinfo = socket.getaddrinfo


def getaddrinfo(host, *args, **kwargs):
    if not _loopback(host):
        _refuse("getaddrinfo", host)
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = getaddrinfo


def _checked(name):
    original = getattr(socket.socket, name)

    def method(self, *args):
        address = args[-1] if name == "sendto" else args[0]
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            _refuse(name, address)
        return original(self, *args)

    method.__name__ = name
    setattr(socket.socket, name, method)


for _name in ("connect", "connect_ex", "sendto"):
    _checked(_name)
'''


def environment(log: Path, base: dict | None = None) -> dict:
    """The child's environment: the guard's directory first on PYTHONPATH, and where it writes."""
    directory = log.parent / "net_guard"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([str(directory), *filter(None, [env.get("PYTHONPATH")])])
    env[LOG_VAR] = str(log)
    return env


def attempts(log: Path) -> list[dict]:
    """Every refused attempt the child made (empty when it called only the loopback)."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
