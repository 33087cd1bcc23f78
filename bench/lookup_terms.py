"""The lookup index's terms pass (collector/store/_lookup_terms.c), alone: CPU per row of the
extension's `terms` and of `lookup_index.compiled_entries` (its caller: the Python that reads
the columns' buffers, then `terms`) over realistic batches, this tree's extension against
another commit's, in one process.

Two mixes, each as the writer hands them to the index (Arrow tables with `_seq`, one call per
table): "ingest bench", the ingest bench's envelopes (tests/loader.py's `batch_body` through
`prepare_body`), and "GUID ids", bench/lookup_writer.py's rows (a GUID operation id, item id and
request id per row). The baseline's `_lookup_terms.c` (`git show REF:...`) is built in a temp
dir and swapped in for the timed calls; rounds alternate the two, and both sides' entries are
checked to be the same. CPU time is the calling thread's (the extension releases the GIL but
runs on it).

    python bench/lookup_terms.py [--rounds 5] [--repeats 20] [--baseline-ref main]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from types import ModuleType

import pyarrow as pa
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from loader import batch_body  # noqa: E402

from bench.lookup_writer import batch as writer_batch  # noqa: E402
from collector.ingest.prepare import prepare_body  # noqa: E402
from collector.store import lookup_index  # noqa: E402
from collector.store.schema import SEQ_COLUMN  # noqa: E402

console = Console()
SOURCE = "collector/store/_lookup_terms.c"
Calls = list[tuple[str, dict[str, pa.ChunkedArray], int]]


def with_seq(tables: dict[str, pa.Table]) -> Calls:
    """One (table, columns, rows) per indexed table, as LookupIndex.record passes them."""
    calls, seq = [], 0
    for name, table in tables.items():
        if name in lookup_index.UNINDEXED or not table.num_rows:
            continue
        table = table.append_column(SEQ_COLUMN, pa.array(range(seq, seq + table.num_rows), pa.int64()))
        seq += table.num_rows
        calls.append((name, dict(zip(table.column_names, table.columns, strict=True)), table.num_rows))
    return calls


def ingest_mix(batches: int) -> Calls:
    calls: Calls = []
    for number in range(batches):
        body = batch_body("key", f"batch-{number}", number)
        calls += with_seq(prepare_body(body, "gzip", {"key": ("svc", True)}, Path("/nonexistent")).tables)
    return calls


def writer_mix(batches: int) -> Calls:
    return [call for _ in range(batches) for call in with_seq(writer_batch(500))]


def baseline_module(ref: str, into: Path) -> ModuleType:
    """`ref`'s extension, built alone in `into` and imported under another package name."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{SOURCE}"], capture_output=True, check=True).stdout
    (into / "_lookup_terms.c").write_bytes(source)
    (into / "setup.py").write_text("from setuptools import Extension, setup\n"
                                   "setup(name='baseline', ext_modules=[Extension('_lookup_terms', "
                                   "['_lookup_terms.c'], extra_compile_args=['-O2'])])\n")
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=into, capture_output=True, check=True)
    (built,) = into.glob("_lookup_terms*.so")
    spec = importlib.util.spec_from_file_location("baseline._lookup_terms", built)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Recorder:
    """Stands for the extension in compiled_entries to keep the arguments of its calls."""

    def __init__(self, module: ModuleType):
        self.module, self.calls = module, []

    def terms(self, *args):
        self.calls.append(args)
        return self.module.terms(*args)


def entries(module: ModuleType, calls: Calls) -> tuple[list, list]:
    """compiled_entries' results over `calls`, and the arguments it passed to `terms`."""
    recorder = Recorder(module)
    lookup_index._lookup_terms = recorder
    made = [lookup_index.compiled_entries(table, columns, rows) for table, columns, rows in calls]
    return made, recorder.calls


def cpu_ns_per_row(module: ModuleType, calls: Calls, repeats: int) -> float:
    """compiled_entries, whole: the Python that reads the columns' buffers, and `terms`."""
    lookup_index._lookup_terms = module
    rows = sum(r for _, _, r in calls) * repeats
    started = time.thread_time_ns()
    for _ in range(repeats):
        for table, columns, count in calls:
            lookup_index.compiled_entries(table, columns, count)
    return (time.thread_time_ns() - started) / rows


def terms_ns_per_row(module: ModuleType, arguments: list, rows: int, repeats: int) -> float:
    """The extension's `terms` alone, on the arguments compiled_entries gave it."""
    started = time.thread_time_ns()
    for _ in range(repeats):
        for args in arguments:
            module.terms(*args)
    return (time.thread_time_ns() - started) / (rows * repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20, help="passes over a mix's batches per timed side")
    parser.add_argument("--batches", type=int, default=16, help="batches of 500 items per mix")
    parser.add_argument("--baseline-ref", default="main")
    args = parser.parse_args()
    current = lookup_index._lookup_terms
    assert current is not None, "this tree's extension is not built (python setup.py build_ext --inplace)"
    with console.status("building the mixes and the baseline"):
        mixes = {"ingest bench": ingest_mix(args.batches), "GUID ids": writer_mix(args.batches)}
        with tempfile.TemporaryDirectory() as folder:
            baseline = baseline_module(args.baseline_ref, Path(folder))
    arguments = {}
    for name, calls in mixes.items():
        (made, arguments[name]), (wanted, _) = entries(current, calls), entries(baseline, calls)
        assert made == wanted, f"{name}: the entries differ from the baseline's"
    lookup_index._lookup_terms = current
    table = Table(title=f"bench/lookup_terms.py: CPU ns per row ({args.repeats} passes over the mix a round)")
    for column in ("mix", "round", "measure", f"baseline {args.baseline_ref}", "this tree", "this / baseline"):
        table.add_column(column, justify="left" if column in ("mix", "measure") else "right")
    for name, calls in mixes.items():
        rows = sum(r for _, _, r in calls)
        measures = {"terms (C)": partial(terms_ns_per_row, arguments=arguments[name], rows=rows, repeats=args.repeats),
                    "compiled_entries": partial(cpu_ns_per_row, calls=calls, repeats=args.repeats)}
        ratios: dict[str, list[float]] = {measure: [] for measure in measures}
        for round_ in range(1, args.rounds + 1):
            sides = [(baseline, "base"), (current, "this")]
            for measure, timer in measures.items():
                timed = {label: timer(module) for module, label in (sides if round_ % 2 else sides[::-1])}
                ratios[measure].append(timed["this"] / timed["base"])
                table.add_row(name, str(round_), measure, f"{timed['base']:,.0f}", f"{timed['this']:,.0f}",
                              f"{ratios[measure][-1]:.2f}x")
        for measure, measured in ratios.items():
            table.add_row(name, "median", measure, "", "", f"[bold]{statistics.median(measured):.2f}x[/bold]",
                          end_section=measure == "compiled_entries")
    lookup_index._lookup_terms = current
    console.print(table)
    console.print("rows per pass: " + ", ".join(f"{n}: {sum(r for _, _, r in c):,}" for n, c in mixes.items()))


if __name__ == "__main__":
    main()
