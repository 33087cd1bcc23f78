"""run()'s result as output rows: what batch deployments accept, and a clear error for anything else.

A pandas DataFrame becomes its rows as CSV (no header, no index: rows from many mini-batches are
appended to one file); a list (or tuple, or numpy array) becomes one line per element, a string as it
is, a list or tuple as a CSV row, anything else as its str(). As in Azure ML, each returned element
counts as one input file that succeeded, so a result shorter than the mini-batch counts the rest as
failed items. Rows come out in no particular order, so a run() that wants to map rows back to files
puts the file's name in the row, as Azure ML asks.
"""

from __future__ import annotations

import csv
import io
import sys


class ResultError(TypeError):
    """run() returned something that cannot be written as rows."""


def render(result) -> tuple[str, int]:
    """(CSV text ending in a newline or empty, number of rows)."""
    if _is_dataframe(result):
        return result.to_csv(header=False, index=False, lineterminator="\n"), len(result)
    if _is_ndarray(result):
        result = result.tolist()
    if isinstance(result, (list, tuple)):
        return _lines(result), len(result)
    raise ResultError(f"run() returned {_kind(result)}: it must return a pandas DataFrame or a list "
                      "(one element per input file that succeeded)")


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
