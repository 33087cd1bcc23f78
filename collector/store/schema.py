"""The telemetry tables, with the column names and types that Application Insights users query.

One declaration serves the DDL, the Arrow schemas the writer builds batches with, the KQL type names
the query API reports, and the row format that export writes and import reads. Two internal columns
follow the public ones in every table: `_service` (which service owns the row: the scope a service's
key can read) and `_seq` (the ingestion sequence export checkpoints on). They never reach a user.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pyarrow as pa

# KQL type name -> (DuckDB type, Arrow type)
_TYPES: dict[str, tuple[str, pa.DataType]] = {
    "datetime": ("TIMESTAMP", pa.timestamp("us")),
    "string": ("VARCHAR", pa.string()),
    "int": ("INTEGER", pa.int32()),
    "long": ("BIGINT", pa.int64()),
    "real": ("DOUBLE", pa.float64()),
    "bool": ("BOOLEAN", pa.bool_()),
    "dynamic": ("JSON", pa.string()),
}

_TIMESTAMP = pa.timestamp("us")

SERVICE_COLUMN = "_service"
SEQ_COLUMN = "_seq"
SEQUENCE = "ingest_seq"
"""The DuckDB sequence `_seq` values come from (see store/writer.py)."""
INTERNAL_COLUMNS = (SERVICE_COLUMN, SEQ_COLUMN)


@dataclass(frozen=True)
class Column:
    name: str
    kql_type: str

    @property
    def sql_type(self) -> str:
        return _TYPES[self.kql_type][0]

    @property
    def arrow_type(self) -> pa.DataType:
        return _TYPES[self.kql_type][1]


def _columns(spec: str) -> tuple[Column, ...]:
    """Parse 'name:type name:type ...' (type defaults to string) into columns."""
    out = []
    for token in spec.split():
        name, _, kql_type = token.partition(":")
        out.append(Column(name, kql_type or "string"))
    return tuple(out)


_COMMON = _columns(
    "itemType customDimensions:dynamic customMeasurements:dynamic "
    "operation_Name operation_Id operation_ParentId operation_SyntheticSource "
    "session_Id user_Id user_AuthenticatedId user_AccountId application_Version "
    "client_Type client_Model client_OS client_IP client_City client_StateOrProvince "
    "client_CountryOrRegion client_Browser cloud_RoleName cloud_RoleInstance "
    "appId appName iKey sdkVersion itemId itemCount:int"
)
_COMMON_WITHOUT_MEASUREMENTS = tuple(
    c for c in _COMMON if c.name not in ("customMeasurements", "itemCount")
)

_ITEM_IDENTITY = _columns("itemType itemId")
"""The two common columns the tables added for model monitoring keep: export names the table by
itemType, import is idempotent by itemId."""


@dataclass(frozen=True)
class Table:
    name: str
    item_type: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @cached_property
    def arrow_schema(self) -> pa.Schema:
        fields = [pa.field(c.name, c.arrow_type) for c in self.columns]
        fields += [pa.field(SERVICE_COLUMN, pa.string()), pa.field(SEQ_COLUMN, pa.int64())]
        return pa.schema(fields)

    @cached_property
    def incoming_schema(self) -> pa.Schema:
        """What to_arrow builds: every stored column but `_seq`, which the writer assigns."""
        return pa.schema([f for f in self.arrow_schema if f.name != SEQ_COLUMN])

    def to_arrow(self, rows: list[dict]) -> pa.Table:
        """Stored-form rows (timestamps as epoch microseconds, dynamic as JSON text, `_service` set)
        as an Arrow table without `_seq`, which the writer assigns at commit.

        Built column by column, skipping the columns no row has (most App Insights columns are
        empty for any one SDK): several times faster than pa.Table.from_pylist for rows this wide.
        Timestamps go through int64, which pyarrow converts far faster than Python ints.
        """
        present = set().union(*rows)
        arrays = []
        for column in self.incoming_schema:
            if column.name not in present:
                arrays.append(pa.nulls(len(rows), column.type))
            elif column.type == _TIMESTAMP:
                arrays.append(pa.array([row.get(column.name) for row in rows], pa.int64()).cast(_TIMESTAMP))
            else:
                arrays.append(pa.array([row.get(column.name) for row in rows], column.type))
        return pa.Table.from_arrays(arrays, schema=self.incoming_schema)

    def added_columns_ddl(self, existing: set[str]) -> list[str]:
        """ALTERs adding the columns a table created by an earlier version lacks (they come last;
        the writer inserts by name)."""
        return [f'ALTER TABLE "{self.name}" ADD COLUMN "{c.name}" {c.sql_type}' for c in self.columns
                if c.name not in existing]

    def ddl(self) -> str:
        cols = [f'"{c.name}" {c.sql_type}' for c in self.columns]
        cols += [f'"{SERVICE_COLUMN}" VARCHAR NOT NULL', f'"{SEQ_COLUMN}" BIGINT NOT NULL']
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" ({", ".join(cols)})'


def _table(name: str, item_type: str, specific: str, common=_COMMON) -> Table:
    return Table(name, item_type, _columns("timestamp:datetime " + specific) + common)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        _table("traces", "trace", "message severityLevel:int"),
        _table(
            "requests",
            "request",
            "id source name url success:bool resultCode duration:real performanceBucket",
        ),
        _table(
            "dependencies",
            "dependency",
            "id target type name data success:bool resultCode duration:real performanceBucket",
        ),
        _table(
            "exceptions",
            "exception",
            "problemId handledAt type message assembly method outerType outerMessage "
            "outerAssembly outerMethod innermostType innermostMessage innermostAssembly "
            "innermostMethod severityLevel:int details:dynamic",
        ),
        _table("customEvents", "customEvent", "name"),
        _table(
            "customMetrics",
            "customMetric",
            "name value:real valueCount:int valueSum:real valueMin:real valueMax:real "
            "valueStdDev:real",
            _COMMON_WITHOUT_MEASUREMENTS,
        ),
        # Standard performance counters and SDK self-telemetry (_OTELRESOURCE_, Item_*_Count):
        # kept, but out of customMetrics, as Application Insights does.
        _table(
            "performanceCounters",
            "performanceCounter",
            "name category counter instance value:real",
            _COMMON_WITHOUT_MEASUREMENTS,
        ),
        _table("availabilityResults", "availabilityResult",
               "id name location success:bool message duration:real performanceBucket size:real"),
        _table("pageViews", "pageView", "id name url duration:real performanceBucket"),
        # Envelopes of a base type we do not model are kept whole rather than lost.
        _table("unknownTelemetry", "unknown", "name baseType payload:dynamic"),
        # What score.py's model data collectors sent (issue 17): one row per DataFrame row.
        _table("modelData", "modelData",
               "collection correlationId operation_Id modelVersion endpoint deployment rowIndex:long data:dynamic", _ITEM_IDENTITY),
        # Model monitors' results, one row per window, feature and metric (monitoring/).
        _table("modelMonitorResults", "modelMonitorResult",
               "monitor signal feature featureType metric value:real threshold:real drifted:bool "
               "windowStart:datetime windowEnd:datetime runId details:dynamic", _ITEM_IDENTITY),
    )
}

TABLE_BY_ITEM_TYPE = {t.item_type: t for t in TABLES.values()}
