"""Returns one prediction per file (the length of its text) without naming the file, as many
append_row scripts do: a list of numbers, or a one-column DataFrame when the mini-batch holds a file
saying `frame`; a mini-batch holding a file saying `drop` returns one row fewer than it got."""

import pandas as pd


def init():
    pass


def run(mini_batch):
    texts = [open(path).read().strip() for path in mini_batch]
    predictions = [len(text) for text in texts]
    if "drop" in texts:
        return predictions[:-1]
    if "frame" in texts:
        return pd.DataFrame({"prediction": predictions})
    return predictions
