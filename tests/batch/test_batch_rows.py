"""run()'s result as output rows: with one row per input file the runner adds the file's key unless
the row already names its input; with any other count the rows are written as returned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.batch.rows import ResultError, render

FILES = ["/data/in/a.txt", "/data/in/sub/b.txt", "/data/in/c,1.txt"]
KEYS = ["a.txt", "sub/b.txt", "c,1.txt"]


def rows(result, files=FILES, keys=KEYS):
    return render(result, files, keys)


def test_one_number_per_file_gets_each_files_key_first():
    rendered = rows([0.5, 0.25, 1])
    assert rendered.text == 'a.txt,0.5\nsub/b.txt,0.25\n"c,1.txt",1\n'
    assert rendered.count == 3 and not rendered.unkeyed


def test_a_dataframe_without_a_key_column_gets_one_first():
    frame = pd.DataFrame({"label": ["cat", "dog", "cat"], "score": [0.9, 0.8, 0.7]})
    assert rows(frame).text == 'a.txt,cat,0.9\nsub/b.txt,dog,0.8\n"c,1.txt",cat,0.7\n'
    assert list(frame.columns) == ["label", "score"]  # the script's own frame is left as it was


@pytest.mark.parametrize("column", [["a.txt", "b.txt", "c,1.txt"], FILES, KEYS, ["c,1.txt", "a.txt", "b.txt"]])
def test_a_dataframe_naming_its_inputs_is_written_as_returned(column):
    """By file name, full path or key, in any order."""
    frame = pd.DataFrame({"file": column, "score": [1, 2, 3]})
    assert rows(frame).text == frame.to_csv(header=False, index=False, lineterminator="\n")


def test_rows_that_name_their_input_are_left_alone_and_the_others_get_their_key():
    result = ["a.txt,1", '{"file": "/data/in/sub/b.txt", "score": 2}', "3"]
    assert rows(result).text == 'a.txt,1\n{"file": "/data/in/sub/b.txt", "score": 2}\n"c,1.txt",3\n'


def test_a_name_inside_a_longer_token_is_not_a_key():
    assert rows(["xa.txt", "sub/b.txt.bak", "1"]).text == 'a.txt,xa.txt\nsub/b.txt,sub/b.txt.bak\n"c,1.txt",1\n'


def test_list_and_array_rows_get_the_key_as_their_first_field():
    assert rows([["cat", 1], ("b.txt", 2), ["dog", 3]]).text == 'a.txt,cat,1\nb.txt,2\n"c,1.txt",dog,3\n'
    assert rows(np.array([[1, 2], [3, 4], [5, 6]])).text == 'a.txt,1,2\nsub/b.txt,3,4\n"c,1.txt",5,6\n'


def test_a_different_count_is_written_as_returned_and_flagged_when_it_names_no_input():
    shorter = rows([0.5, 0.25])
    assert shorter.text == "0.5\n0.25\n" and shorter.count == 2 and shorter.unkeyed
    named = rows(["a.txt,0.5"])
    assert named.text == "a.txt,0.5\n" and not named.unkeyed
    frame = rows(pd.DataFrame({"score": [1, 2]}))
    assert frame.text == "1\n2\n" and frame.unkeyed
    assert not rows([]).unkeyed  # nothing to map back


def test_neither_a_dataframe_nor_a_list_is_an_error():
    with pytest.raises(ResultError, match="run\\(\\) returned dict: it must return a pandas DataFrame or a list"):
        rows({"a.txt": 1})
