"""The stored form of a row, as far as ingestion decides it beyond the table's columns (store/schema.py).

An envelope is mapped two ways, item by item (envelope.py, then prepare.py and cap.py) and a
column at a time (columnar.py), and both must store the same row: the rules they share are here,
once. The tables, their columns and item types are schema.py's; this module reads them there.
"""

from __future__ import annotations

from collector.store.schema import SERVICE_COLUMN, TABLES

ITEM_TYPES = {name: table.item_type for name, table in TABLES.items()}
"""A row's `itemType` is its table's, as store/schema.py declares it."""

TAG_COLUMNS = {
    "ai.operation.id": "operation_Id",
    "ai.operation.name": "operation_Name",
    "ai.operation.parentId": "operation_ParentId",
    "ai.operation.syntheticSource": "operation_SyntheticSource",
    "ai.session.id": "session_Id",
    "ai.user.id": "user_Id",
    "ai.user.authUserId": "user_AuthenticatedId",
    "ai.user.accountId": "user_AccountId",
    "ai.application.ver": "application_Version",
    "ai.device.type": "client_Type",
    "ai.device.model": "client_Model",
    "ai.device.osVersion": "client_OS",
    "ai.location.ip": "client_IP",
    "ai.location.city": "client_City",
    "ai.location.province": "client_StateOrProvince",
    "ai.location.country": "client_CountryOrRegion",
    "ai.cloud.role": "cloud_RoleName",
    "ai.cloud.roleInstance": "cloud_RoleInstance",
    "ai.internal.sdkVersion": "sdkVersion",
}
"""Envelope tag -> the column it fills; other tags are not stored."""

TAG_LIMIT = 1024
"""Tag columns (operation, cloud, user...) are cut at this length when mapped, as App Insights does,
so only the columns below can make an item large."""

TEXT_COLUMNS = ("message", "url", "data", "name", "outerMessage", "innermostMessage")
"""Free-text columns: cut to cap.TEXT_LIMIT, with a marker, when an item is capped."""
SIZED_COLUMNS = TEXT_COLUMNS + ("customDimensions", "customMeasurements", "details", "payload", "type", "problemId")
"""The columns whose text counts toward an item's size (cap.row_size; dynamic ones as JSON text)."""

NO_CLIENT_IP = "0.0.0.0"
"""client_IP of an item whose tags carry no `ai.location.ip`."""


def owner_columns(service: object, ikey: object) -> dict[str, object]:
    """The columns that say whose a row is: the service's name in `_service` (the scope its key can
    read) and `appName`, its instrumentation key in `appId`. Single values or Arrow columns alike,
    so that the item-by-item and the column-wise mapper fill them the same way."""
    return {SERVICE_COLUMN: service, "appName": service, "appId": ikey}


INT_MIN, INT_MAX = -(2**31), 2**31 - 1
"""The range of an `int` column (itemCount, valueCount, severityLevel): KQL's int is 32-bit, as in
App Insights, whose own `count` and `itemCount` are 32-bit too. A value outside it is the item's
error (400 naming the field), never the batch's."""

TIME_MIN_US = -62_135_596_800_000_000
TIME_MAX_US = 253_402_300_799_999_999
"""The timestamps a row may hold, in microseconds since the epoch: 0001-01-01T00:00:00Z to
9999-12-31T23:59:59.999999Z, what ISO 8601 (and so export and import) can write and read back."""
TIME_RANGE = "0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"

MAX_NESTING = 100
"""A dynamic column's value (customDimensions, details, payload) nests objects and arrays at most
this deep (protobuf bounds OTLP messages the same way); a deeper item is refused (400 naming the
field), well below where JSON encoders (orjson: 255 levels), the export files and the query API's
answers (which wrap the value in a few more levels) give up."""

DYNAMIC_SOURCES = {
    "customDimensions": "data.baseData.properties",
    "customMeasurements": "data.baseData.measurements",
    "details": "data.baseData.exceptions",
    "payload": "data.baseData",
}
"""The envelope field each dynamic column is made from, as an item's error names it."""
