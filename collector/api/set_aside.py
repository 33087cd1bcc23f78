"""Batches the store refused after acknowledging them (collector/store/set_aside.py), for the admin:

- `GET /api/store/set-aside`: each batch set aside, oldest first (record, when, rows by table, items
  by service, what the store said), and their items in all.
- `POST /api/store/set-aside/replay`: commit them now, once what refused them is fixed; those the
  store refuses again stay set aside, with its new reason.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from collector.api.auth import Caller, admin
from collector.store.set_aside import item_count

router = APIRouter(prefix="/api/store", tags=["store"])


@router.get("/set-aside")
def list_set_aside(request: Request, _: Caller = Depends(admin)) -> dict:
    batches = request.app.state.store.set_aside.batches()
    return {"batches": batches, "items": item_count(batches)}


@router.post("/set-aside/replay")
def replay_set_aside(request: Request, _: Caller = Depends(admin)) -> dict:
    """Runs in FastAPI's thread pool: the replay waits for its commits."""
    return request.app.state.store.set_aside.replay()
