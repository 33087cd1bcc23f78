"""The rules for dynamic values built in the query, mv-expand/mv-apply/bag_unpack and the shapes
only DuckDB's binding knows, grouped by where rules.RULES runs them (the order matters: the first
bind DuckDB SQL, so they see it before any rule rewrites it; the JSON-cast readers run before
jsontext.json_literals drops those casts; the expansion before jsontext.json_functions rewrites
DuckDB's json_type)."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from .bags import merged_bags
from .digests import DIGESTS
from .dynamics import built_json, list_columns, made_sets
from .entries import bag_entries
from .expansions import expanded_items, stable_row_numbers
from .intervals import clock_intervals
from .jsonlists import json_lists
from .jsontext import missing_members
from .percentile_arrays import percentile_arrays
from .retyping import fold_typeof_nested
from .sessions import session_walks
from .shapes import described_tables, renamed_columns, typed_columns

Rule = Callable[[exp.Expr], exp.Expr]

BINDING: tuple[Rule, ...] = (renamed_columns, described_tables, list_columns, made_sets, percentile_arrays,
                             typed_columns, *DIGESTS, session_walks)
JSON_CASTS: tuple[Rule, ...] = (json_lists, merged_bags, bag_entries)
EXPANSIONS: tuple[Rule, ...] = (expanded_items, stable_row_numbers)
JSON_TEXTS: tuple[Rule, ...] = (missing_members, built_json)
INTERVALS: tuple[Rule, ...] = (clock_intervals,)
TYPE_FOLDING: tuple[Rule, ...] = (fold_typeof_nested,)  # typing.fold_typeof to a fixpoint (retyping.py)
