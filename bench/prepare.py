"""The prepare path alone: CPU per item to turn one of the loader's gzip bodies into Arrow tables.

What the collector's `ingest-prepare` threads run per large body (threads.py -> prepare_compiled:
decompress, the C parse, the Arrow assembly), without HTTP, the event loop or the writer, in one
thread of a fresh process per round. Baseline, same run: the code of another commit
(`--baseline-ref`, default main: its tree exported with `git archive` and its extension built, as
bench/ingest.py does), alternating with this tree round by round. Each cell is the median of the
rounds; CPU is the process's (user + system) over the timed loop. Also each part alone, on this
tree and the baseline: decompress, the C parse (`_cenvelope.prepare`), and read_body (the parse
and the assembly).

    python bench/prepare.py [--bodies 400] [--rounds 5] [--baseline-ref main]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from ingest import baseline_tree, tree_env  # noqa: E402

PARTS = ("prepare_compiled", "decompress", "C parse", "read_body")

SCRIPT = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from loader import ITEMS_PER_BATCH, prebuilt
from collector.ingest import compiled
from collector.ingest.body import decompress
from collector.ingest.item_ids import random_head
from collector.ingest.prepare import prepare_compiled

ikey = "00000000-0000-4000-8000-00000000bench"
bodies = prebuilt(ikey, 16)
texts = [decompress(body, "gzip") for body in bodies]
routing = {{ikey: ("bench", True)}}
blob_dir = Path({blob_dir!r})
calls = {{
    "prepare_compiled": lambda k: prepare_compiled(bodies[k % 16], "gzip", routing, blob_dir, 0.5),
    "decompress": lambda k: decompress(bodies[k % 16], "gzip"),
    "C parse": lambda k: compiled._native.prepare(texts[k % 16], random_head()),
    "read_body": lambda k: compiled.read_body(texts[k % 16], routing),
}}
out = {{}}
for part in {parts!r}:
    for k in range(32):
        calls[part](k)
    started = time.process_time()
    for k in range({bodies}):
        calls[part](k)
    out[part] = (time.process_time() - started) / ({bodies} * ITEMS_PER_BATCH) * 1e6
print(json.dumps(out))
"""


def measure(env: dict, bodies: int, blob_dir: str) -> dict[str, float]:
    """µs of CPU per item of each part, in a fresh process running the tree `env` names."""
    script = SCRIPT.format(tests=str(ROOT / "tests"), blob_dir=blob_dir, parts=PARTS, bodies=bodies)
    output = subprocess.run([sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True,
                            text=True, check=True, cwd=tempfile.gettempdir()).stdout
    return json.loads(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bodies", type=int, default=400, help="bodies of 500 items per part and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-ref", default="main")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this tree": tree_env(ROOT)}
        (Path(tmp) / "baseline").mkdir()
        trees[args.baseline_ref] = baseline_tree(args.baseline_ref, Path(tmp) / "baseline")
        rounds: dict[str, list[dict]] = {name: [] for name in trees}
        for number in range(args.rounds):
            for name, env in (trees.items() if number % 2 == 0 else reversed(trees.items())):
                rounds[name].append(measure(env, args.bodies, str(Path(tmp) / "blobs")))
    print(f"µs of CPU per item, median of {args.rounds} rounds of {args.bodies} bodies of 500 items "
          f"(load average {os.getloadavg()[0]:.1f} at the end)")
    print(f"{'part':<18}" + "".join(f"{name + ' (range)':>24}" for name in trees) + f"{'ratio':>9}")
    base = args.baseline_ref
    for part in PARTS:
        cells = {name: sorted(r[part] for r in rounds[name]) for name in trees}
        medians = {name: statistics.median(values) for name, values in cells.items()}
        print(f"{part:<18}"
              + "".join(f"{f'{medians[name]:.2f} ({values[0]:.2f}-{values[-1]:.2f})':>24}" for name, values in cells.items())
              + f"{medians['this tree'] / medians[base]:>8.2f}x")


if __name__ == "__main__":
    main()
