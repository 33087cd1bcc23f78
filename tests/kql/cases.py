"""Reading the KQL case files in tests/kql/cases/ (sqlglot-style fixtures: query, expected table).

A file holds cases separated by lines of `----`. A case is:

    # what it shows (and where the example comes from)
    <KQL, one or more lines>
    =>                      (or `=> ordered` when the row order is part of the answer)
    name:type, name:type    (the expected columns)
    ["a", 1]                (each expected row as a JSON array)

or, for a query that must fail, `=> error <innererror code> <text the message contains>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CASES_DIR = Path(__file__).parent / "cases"


@dataclass
class Case:
    id: str
    query: str
    ordered: bool = False
    columns: list[tuple[str, str]] | None = None
    rows: list[list] | None = None
    error_code: str | None = None
    error_text: str = ""


def load(directory: Path = CASES_DIR) -> list[Case]:
    cases = []
    for path in sorted(directory.glob("*.kql")):
        blocks = path.read_text().split("\n----\n")
        for number, block in enumerate(blocks, start=1):
            if block.strip():
                cases.append(_parse(f"{path.stem}:{number}", block))
    return cases


def _parse(case_id: str, block: str) -> Case:
    lines = [line for line in block.strip().splitlines()]
    arrow = next(i for i, line in enumerate(lines) if line.startswith("=>"))
    query = "\n".join(line for line in lines[:arrow] if not line.startswith("#")).strip()
    title = next((line[1:].strip() for line in lines[:arrow] if line.startswith("#")), "")
    case = Case(f"{case_id} {title}"[:90], query)
    directive = lines[arrow][2:].strip()
    if directive.startswith("error"):
        _, code, *text = directive.split(" ", 2)
        case.error_code, case.error_text = code, (text[0] if text else "")
        return case
    case.ordered = directive == "ordered"
    body = [line for line in lines[arrow + 1:] if line.strip()]
    case.columns = [_column(c) for c in body[0].split(",")] if body else []
    case.rows = [json.loads(line) for line in body[1:]]
    return case


def _column(spec: str) -> tuple[str, str]:
    name, _, kql_type = spec.strip().rpartition(":")
    return name.strip(), kql_type.strip()
