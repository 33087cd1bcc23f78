"""Reference and production data with known shifts, shared by the monitor tests and the bench."""

from __future__ import annotations

import numpy as np
import pandas as pd


def frame(rows: int, seed: int, shift_a: float = 0.0, shift_c: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    categories = ["x", "y", "z"]
    weights = [0.2, 0.3, 0.5] if shift_c else [0.5, 0.3, 0.2]
    return pd.DataFrame({
        "a": rng.normal(0.0, 1.0, rows) + shift_a,
        "b": rng.normal(5.0, 2.0, rows),
        "c": rng.choice(categories, rows, p=weights),
        "d": rng.uniform(0.0, 10.0, rows),
    })


def collected_lines(df: pd.DataFrame, collection: str = "model_inputs", per_item: int = 100) -> list[bytes]:
    """The frame as POST /api/modeldata items of `per_item` rows, as the wrapper sends them."""
    import orjson

    return [orjson.dumps({"collection": collection, "data": df.iloc[i:i + per_item].to_json(orient="records"),
                          "contentType": "application/json"})
            for i in range(0, len(df), per_item)]
