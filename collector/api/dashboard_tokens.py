"""One-click dashboard logins: /api/dashboard/...

The dashboard has no key of its own: a person logs in with a key (the admin key, or one service's
API key) and the dashboard acts with that key, server-side, for that browser session only. So that
the first look after `insights up` or `insights demo` stays one click, those commands print a link
carrying a login token:

- `POST /api/dashboard/tokens` (admin key): a new token, single use, valid TOKEN_TTL_S seconds.
- `POST /api/dashboard/tokens/redeem` (header `x-dashboard-token`, no key): the token is spent, and
  the answer is the admin key, which the dashboard's server keeps in that session's state; it never
  reaches the browser. An unknown, spent or expired token is a 401.
- `GET /api/dashboard/whoami` (any key): whose key it is (`{"admin": true}` or `{"admin": false,
  "service": name}`), so a login with a service key shows that service only.

Tokens live in memory only (their digests, not the tokens): they outlive no restart, and a link
printed before one simply expires. At most MAX_OUTSTANDING are valid at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, HTTPException, Request

from collector.api.auth import Caller, admin, caller

TOKEN_TTL_S = 600
MAX_OUTSTANDING = 100
TOKEN_HEADER = "x-dashboard-token"

router = APIRouter(prefix="/api/dashboard", tags=["dashboard"])


class LoginTokens:
    """Single-use tokens by digest, each with its deadline (time.monotonic())."""

    def __init__(self, ttl_s: float = TOKEN_TTL_S, limit: int = MAX_OUTSTANDING):
        self.ttl_s, self.limit = ttl_s, limit
        self._deadlines: dict[str, float] = {}

    def mint(self) -> str:
        now = time.monotonic()
        self._deadlines = {digest: deadline for digest, deadline in self._deadlines.items() if deadline > now}
        while len(self._deadlines) >= self.limit:  # the oldest go first
            del self._deadlines[min(self._deadlines, key=self._deadlines.__getitem__)]
        token = secrets.token_urlsafe(32)
        self._deadlines[_digest(token)] = now + self.ttl_s
        return token

    def redeem(self, token: str) -> bool:
        """True once for a token minted here and not yet expired; spent either way."""
        deadline = self._deadlines.pop(_digest(token), None)
        return deadline is not None and deadline > time.monotonic()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _tokens(request: Request) -> LoginTokens:
    # Routes here are async: they run on the event loop one at a time, so no lock is needed.
    state = request.app.state
    if getattr(state, "dashboard_tokens", None) is None:
        state.dashboard_tokens = LoginTokens()
    return state.dashboard_tokens


@router.post("/tokens", status_code=201)
async def mint_token(request: Request, _: Caller = Depends(admin)) -> dict:
    """A login token for the dashboard (`http://DASHBOARD/?token=...`): single use, short-lived."""
    tokens = _tokens(request)
    token = tokens.mint()
    expires = datetime.fromtimestamp(time.time() + tokens.ttl_s, UTC)
    return {"token": token, "expires_in_s": int(tokens.ttl_s), "expires_at": expires.isoformat().replace("+00:00", "Z")}


@router.post("/tokens/redeem")
async def redeem_token(request: Request) -> dict:
    """Spend a login token (header x-dashboard-token); the answer holds the key the session acts with."""
    token = request.headers.get(TOKEN_HEADER, "")
    if not token or len(token) > 256 or not _tokens(request).redeem(token):
        raise HTTPException(401, "invalid, used or expired login token: a link logs in once, within "
                                 f"{TOKEN_TTL_S // 60} minutes; `insights dashboard --login-link` prints a new one")
    return {"api_key": request.app.state.admin_key, "admin": True}


@router.get("/whoami")
async def whoami(who: Caller = Depends(caller)) -> dict:
    """Whose key was presented: the admin's, or one service's."""
    return {"admin": who.is_admin, "service": who.service}
