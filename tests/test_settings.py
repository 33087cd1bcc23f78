"""The collector reads its environment once, into CollectorSettings; every variable the README names
lands in its field, and an unset one leaves the default."""

from pathlib import Path

from collector.settings import CollectorSettings


def test_every_variable_lands_in_its_field():
    settings = CollectorSettings.from_env(Path("data"), "http://example:8080/", environ={
        "INSIGHTS_QUERY_TIMEOUT_S": "2.5", "INSIGHTS_MEMORY_LIMIT": "1GB", "INSIGHTS_MAX_PENDING_ROWS": "10",
        "INSIGHTS_CHECKPOINT_WAL_BYTES": "1048576", "INSIGHTS_API_KEY": "k", "INSIGHTS_INGEST_WORKERS": "3",
    })
    assert settings == CollectorSettings(
        data_dir=Path("data"), public_url="http://example:8080/", query_timeout_s=2.5, memory_limit="1GB",
        max_pending_rows=10, checkpoint_wal_bytes=1048576, admin_key="k", ingest_workers=3,
    )


def test_unset_and_empty_variables_leave_the_defaults():
    assert CollectorSettings.from_env(Path("d"), environ={"INSIGHTS_MEMORY_LIMIT": "", "INSIGHTS_API_KEY": ""}) == \
        CollectorSettings(data_dir=Path("d"))


def test_the_spool_runs_unless_a_memory_limit_is_set_or_it_is_switched():
    def spools(**environ: str) -> bool:
        return CollectorSettings.from_env(Path("d"), environ=environ).spools

    assert spools() is True
    assert spools(INSIGHTS_MEMORY_LIMIT="300MB") is False
    assert spools(INSIGHTS_MEMORY_LIMIT="300MB", INSIGHTS_INGEST_SPOOL="on") is True
    assert spools(INSIGHTS_INGEST_SPOOL="off") is False
