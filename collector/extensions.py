"""How features plug into the collector without the core knowing them.

Continuous export is the first extension; alerting, model monitoring and live metrics follow the
same shape. An extension brings its routes and a life that follows the app's: `start` runs once
the store, the registry and ingestion are up, `stop` (in reverse order) before they close, and
again on each restart after a fatal store error. The running app keeps each extension at
`app.state.extensions[extension.name]`, where its routes find it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa
from fastapi import APIRouter

from collector.settings import CollectorSettings
from collector.store.database import Store
from collector.store.services import Registry

IngestObserver = Callable[[Mapping[str, pa.Table]], None]
"""Sees what ingestion accepted (live metrics): table name -> the Arrow rows just committed, the
internal `_service` column included. It is called on the event loop for every track and OTLP
body, after the commit and before the answer, so it must cost next to nothing: keep the tables,
do the work elsewhere. It must not change them; an exception it raises is logged, not answered."""


@dataclass(frozen=True)
class Core:
    """What the core hands an extension when it starts."""

    settings: CollectorSettings
    store: Store
    registry: Registry
    ingest_observers: list[IngestObserver] = field(default_factory=list)
    """Called with the rows of each committed batch (see IngestObserver); an extension appends to it."""


class Extension(Protocol):
    name: str
    routers: Sequence[APIRouter]

    def start(self, core: Core) -> None: ...

    def stop(self) -> None: ...
