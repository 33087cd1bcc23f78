"""Reading Python tracebacks that SDKs send as text (`stack`) or as lists of strings.

App Insights wants a parsed stack (frames, level 0 = where the exception was raised) and the whole
chain of exceptions; Python SDKs send the traceback text instead. Parsing it here lets `method`,
`problemId` and `innermostType` say something useful.
"""

from __future__ import annotations

import re

_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d{1,9})(?:, in (?P<method>.+))?$')
_CHAIN_SEPARATOR = re.compile(
    r"\n\s*(?:The above exception was the direct cause of the following exception:"
    r"|During handling of the above exception, another exception occurred:)\s*\n"
)
_EXCEPTION_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")


def frames_from_strings(lines: list[str]) -> list[dict]:
    """Frames from traceback lines ('File "x", line 3, in f'), innermost first."""
    frames = []
    for text in lines:
        for line in text.splitlines():
            match = _FRAME.match(line)
            if match:
                frames.append(_frame(match))
    if not frames:  # not a traceback: keep each string as an opaque frame
        frames = [{"text": text} for text in reversed(lines)]
    return _levelled(list(reversed(frames)))


def exception_chain_from_stack(stack: str) -> list[dict]:
    """The chain in a traceback text, outermost first: [{type, message, parsedStack}], or [] if
    the text is not a Python traceback."""
    blocks = _CHAIN_SEPARATOR.split(stack.strip())
    chain = []
    for block in reversed(blocks):
        parsed = _block(block)
        if parsed is None:
            return []
        chain.append(parsed)
    for index, entry in enumerate(chain):
        entry["id"] = index + 1
        entry["outerId"] = index
    return chain


def _block(block: str) -> dict | None:
    lines = block.strip().splitlines()
    if not lines or not lines[0].startswith("Traceback"):
        return None
    frames = [_frame(m) for m in map(_FRAME.match, lines) if m]
    last = next((line for line in reversed(lines) if line and not line.startswith(" ")), "")
    match = _EXCEPTION_LINE.match(last)
    if not match:
        return None
    return {
        "type": match.group("type"),
        "message": match.group("message") or "",
        "parsedStack": _levelled(list(reversed(frames))),
    }


def _frame(match: re.Match) -> dict:
    return {"method": match.group("method"), "fileName": match.group("file"), "line": int(match.group("line"))}


def _levelled(frames: list[dict]) -> list[dict]:
    return [{"level": level, **frame} for level, frame in enumerate(frames)]
