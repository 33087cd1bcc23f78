"""run()'s result as output rows: what batch deployments accept, and a clear error for anything else.

A pandas DataFrame becomes its rows as CSV (no header, no index: rows from many mini-batches are
appended to one file); a list (or tuple, or numpy array) becomes one line per element, a string as it
is, a list or tuple as a CSV row, anything else as its str(). As in Azure ML, each returned element
counts as one input file that succeeded, so a result shorter than the mini-batch counts the rest as
failed items.

Rows land in the output file in no particular order (mini-batches finish when they finish), so each
row must say which input it came from. The rule:

- **One row per input file** (the common case: as many rows as the mini-batch had files): row i is
  taken to be file i's, and a row that does not already carry its input gets the file's *key* (its
  path relative to --input: the file name, for a flat folder) as its first field. A row carries its
  input when one of its fields is a file's key, its name or its full path: a DataFrame column that
  holds one in every row, a list or tuple element, or a whole token of a string row (so
  `"a.txt,0.93"` and `'{"file": "a.txt"}'` are left alone, and `0.93` becomes `a.txt,0.93`).
- **Any other count**: the rows are written as run() returned them. The runner cannot tell which
  row belongs to which file, so run() must put the file name in each row itself, as Azure ML asks;
  `unkeyed` tells the orchestrator that it did not, to warn once in sys/master_role.txt.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

KEY_COLUMN = "input_key"
_TOKEN_BREAK = re.compile(r"[^\w.\-/\\]+")


class ResultError(TypeError):
    """run() returned something that cannot be written as rows."""


@dataclass(frozen=True)
class Rendered:
    text: str
    """CSV text ending in a newline, or empty."""
    count: int
    unkeyed: bool = False
    """The counts differ and some row names no input: the rows cannot be mapped back to files."""


def render(result, files: Sequence[str], keys: Sequence[str]) -> Rendered:
    """run()'s result for the mini-batch `files` (full paths) whose keys are `keys`."""
    inputs = _Inputs(files, keys)
    if _is_dataframe(result):
        return _frame(result, inputs)
    if _is_ndarray(result):
        result = result.tolist()
    if isinstance(result, (list, tuple)):
        return _elements(result, inputs)
    raise ResultError(f"run() returned {_kind(result)}: it must return a pandas DataFrame or a list "
                      "(one element per input file that succeeded)")


class _Inputs:
    """What a row may name its input by: a file's key, its name or its full path."""

    def __init__(self, files: Sequence[str], keys: Sequence[str]):
        self.keys = keys
        self.count = len(files)
        self.names = {*keys, *files, *(os.path.basename(path) for path in files)}
        self._spaced = [name for name in self.names if _TOKEN_BREAK.search(name)]

    def named_in(self, text: str) -> bool:
        if text in self.names or any(token in self.names for token in _TOKEN_BREAK.split(text)):
            return True
        return any(name in text for name in self._spaced)

    def carried_by(self, element) -> bool:
        if isinstance(element, str):
            return self.named_in(element)
        if isinstance(element, (list, tuple)):
            return any(str(field) in self.names for field in element)
        if isinstance(element, dict):
            return any(str(value) in self.names for value in element.values())
        return self.named_in(str(element))


def _frame(frame, inputs: _Inputs) -> Rendered:
    carried = any(_column_names_inputs(frame.iloc[:, index], inputs) for index in range(frame.shape[1]))
    if len(frame) == inputs.count and not carried:
        frame = frame.copy(deep=False)
        frame.insert(0, KEY_COLUMN, list(inputs.keys), allow_duplicates=True)
    text = frame.to_csv(header=False, index=False, lineterminator="\n")
    return Rendered(text, len(frame), unkeyed=len(frame) != inputs.count and not carried and len(frame) > 0)


def _column_names_inputs(column, inputs: _Inputs) -> bool:
    if len(column) == 0 or column.dtype.kind not in "OSU":  # names are text; numbers are never keys
        return False
    return bool(column.astype(str).isin(inputs.names).all())


def _elements(elements, inputs: _Inputs) -> Rendered:
    paired = len(elements) == inputs.count
    carried = [inputs.carried_by(element) for element in elements]
    if paired:
        elements = [element if carries else _with_key(inputs.keys[index], element)
                    for index, (element, carries) in enumerate(zip(elements, carried))]
    return Rendered(_lines(elements), len(elements), unkeyed=not paired and not all(carried))


def _with_key(key: str, element):
    if isinstance(element, (list, tuple)):
        return [key, *element]
    text = element if isinstance(element, str) else str(element)
    return f"{_csv_field(key)},{text}"


def _csv_field(text: str) -> str:
    if any(character in text for character in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _kind(value) -> str:
    cls = type(value)
    if value is None or cls.__module__ == "builtins":
        return "None" if value is None else cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _lines(elements) -> str:
    if all(type(element) is str for element in elements):
        return "".join(element if element.endswith("\n") else element + "\n" for element in elements)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for element in elements:
        if isinstance(element, (list, tuple)):
            writer.writerow(element)
        else:
            text = element if isinstance(element, str) else str(element)
            buffer.write(text if text.endswith("\n") else text + "\n")
    return buffer.getvalue()


def _is_dataframe(value) -> bool:
    """Without importing pandas: a script that returns a DataFrame has imported it already."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def _is_ndarray(value) -> bool:
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)
