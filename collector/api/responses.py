"""JSON responses rendered by orjson: the track and query answers are on hot paths, and FastAPI's own
ORJSONResponse is deprecated."""

from __future__ import annotations

import orjson
from fastapi.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
