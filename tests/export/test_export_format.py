"""The blob format in isolation: names, and NDJSON that any JSON parser reads."""

from datetime import UTC, datetime

import duckdb
import orjson

from collector.store.schema import TABLES
from exporters.formats import BlobRange, blob_name, write_ndjson


def test_blob_name_follows_the_app_insights_layout_and_is_fixed_by_the_range():
    written = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    name = blob_name("my-svc", "0a1b2c3d-0000-4000-8000-00000000abcd", "Requests", BlobRange(11, 250, 200), written)
    assert name == ("my-svc_0a1b2c3d000040008000" "00000000abcd/Requests/2026-03-04/05/"
                    "0000000000000011-0000000000000250_20260304_050607.blob")


def test_non_finite_numbers_become_null_so_every_line_is_json(tmp_path):
    con = duckdb.connect()
    con.execute(TABLES["customMetrics"].ddl())
    con.execute("""INSERT INTO "customMetrics" ("timestamp", "name", "value", "valueSum", "itemType", "itemId", _service, _seq)
                   VALUES ('2026-01-01 00:00:00', 'm', 'nan'::DOUBLE, 'inf'::DOUBLE, 'customMetric', 'a', 's', 1),
                          ('2026-01-01 00:00:00.5', 'm', 2.5, 0.1, NULL, 'b', 's', 2)""")
    count = write_ndjson(con, TABLES["customMetrics"], "s", BlobRange(1, 2, 2), tmp_path / "blob")
    first, second = [orjson.loads(line) for line in (tmp_path / "blob").read_bytes().splitlines()]
    assert count == 2
    assert (first["value"], first["valueSum"], first["timestamp"]) == (None, None, "2026-01-01T00:00:00.000000Z")
    assert (second["value"], second["valueSum"], second["itemType"]) == (2.5, 0.1, "customMetric")
