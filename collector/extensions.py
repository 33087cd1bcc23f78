"""How features plug into the collector without the core knowing them.

Continuous export is the first extension; alerting, model monitoring and live metrics follow the
same shape. An extension brings its routes and a life that follows the app's: `start` runs once
the store, the registry and ingestion are up, `stop` (in reverse order) before they close, and
again on each restart after a fatal store error. The running app keeps each extension at
`app.state.extensions[extension.name]`, where its routes find it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from fastapi import APIRouter

from collector.settings import CollectorSettings
from collector.store.database import Store
from collector.store.services import Registry


@dataclass(frozen=True)
class Core:
    """What the core hands an extension when it starts."""

    settings: CollectorSettings
    store: Store
    registry: Registry


class Extension(Protocol):
    name: str
    routers: Sequence[APIRouter]

    def start(self, core: Core) -> None: ...

    def stop(self) -> None: ...
