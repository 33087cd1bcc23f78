"""What users send to create rules, action groups and availability tests, checked before anything is
stored: a mistake is a 400 naming the field (and, for a query, the line and column) at creation,
not a rule that fails every minute. Unknown fields are refused.

Durations are ISO 8601 (`PT5M`, as Azure writes them), a number of seconds, or `30s`/`5m`/`1h`/`1d`.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from collector.destinations import forbidden_address
from collector.kql import KqlError, explain

OPERATORS = {
    "GreaterThan": lambda v, t: v > t, "GreaterThanOrEqual": lambda v, t: v >= t,
    "LessThan": lambda v, t: v < t, "LessThanOrEqual": lambda v, t: v <= t,
    "Equal": lambda v, t: v == t, "NotEqual": lambda v, t: v != t,
}
DYNAMIC_OPERATORS = ("GreaterThan", "LessThan", "GreaterOrLessThan")
_OPERATOR_ALIASES = {">": "GreaterThan", ">=": "GreaterThanOrEqual", "<": "LessThan", "<=": "LessThanOrEqual",
                     "==": "Equal", "=": "Equal", "!=": "NotEqual", "<>": "GreaterOrLessThan"}
AGGREGATIONS = ("avg", "min", "max", "total", "count")
MAX_DIMENSIONS = 5
MAX_DURATION_S = 24 * 3600
_MEASURE = re.compile(r"^\s*(?P<agg>[a-z]+)\s*\(\s*(?P<column>[A-Za-z_]\w*)?\s*\)\s*$")
_COLUMN = re.compile(r"^[A-Za-z_]\w*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,79}$")
_SHORT = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d)$", re.IGNORECASE)
_ISO = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$", re.IGNORECASE)


class SpecError(ValueError):
    """A bad field: `field` names it, so the API answers 400 saying which."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def seconds(value: Any, field: str) -> int:
    """A duration in whole seconds (see the module doc)."""
    if isinstance(value, bool):
        raise SpecError(field, "expected a duration such as PT5M, 300 or 5m")
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    short = _SHORT.match(text)
    if short:
        return int(float(short["n"]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[short["unit"].lower()])
    iso = _ISO.match(text)
    if iso and text.upper() not in ("P", "PT"):
        return sum(int(iso[k] or 0) * f for k, f in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)))
    if text.isdigit():
        return int(text)
    raise SpecError(field, f"{text!r} is not a duration: use ISO 8601 (PT5M), seconds (300) or 5m/1h/1d")


def iso_duration(total: int) -> str:
    """PT…: how Azure writes a window size."""
    hours, rest = divmod(int(total), 3600)
    minutes, secs = divmod(rest, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs or not total else "")


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError("name", f"a {what} name is 1 to 80 letters, digits, spaces, '.', '_' or '-', "
                        "starting with a letter or digit")
    return name


def parse_measure(text: str) -> tuple[str, str | None]:
    """('rows', None) for the row count, else (aggregation, column)."""
    if text.strip().lower() in ("rows", "count", "count()", "rowcount"):
        return "rows", None
    found = _MEASURE.match(text)
    if not found or found["agg"].lower() not in AGGREGATIONS or not found["column"]:
        raise SpecError("measure", f"{text!r}: use 'rows' (the row count) or one of "
                        f"{', '.join(a + '(column)' for a in AGGREGATIONS)}")
    return found["agg"].lower(), found["column"]


VALUE_COLUMN = "alert_value"
_AGGREGATE = {"rows": "count()", "count": "countif(isnotnull({c}))", "total": "sum({c})", "avg": "avg({c})",
              "min": "min({c})", "max": "max({c})"}


def measured_query(spec: dict) -> str:
    """The rule's query with its measure appended as a `summarize` by its dimensions: the store
    computes one row per series instead of sending every row of the window to Python."""
    aggregation, column = parse_measure(spec["measure"])
    by = f" by {', '.join(spec['split_by'])}" if spec["split_by"] else ""
    return f"{spec['query']}\n| summarize {VALUE_COLUMN} = {_AGGREGATE[aggregation].format(c=column)}{by}"


class RuleSpec(BaseModel):
    """A log alert rule (the JSON of POST /api/services/{name}/alert-rules)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    query: str = Field(description="KQL, run in the rule's service's scope over the window.")
    description: str = ""
    frequency: int | str = Field("PT5M", description="How often: 1 minute to 24 hours.")
    window: int | str | None = Field(None, description="Lookback of each evaluation (default: the frequency).")
    measure: str = Field("rows", description="'rows' or avg|min|max|total|count(column).")
    split_by: list[str] = Field(default_factory=list, description="Up to 5 dimension columns.")
    operator: str = "GreaterThan"
    threshold: float | None = None
    dynamic: Literal["low", "medium", "high"] | None = Field(
        None, description="Sensitivity of a dynamic threshold (instead of `threshold`).")
    failing_periods: int = Field(1, ge=1, description="Failing evaluations needed...")
    evaluation_periods: int = Field(1, ge=1, le=60, description="...out of the last this many.")
    severity: int | str = 3
    enabled: StrictBool = True
    resolve_after: int | str = Field(0, description="Clear this long before an instance resolves.")
    mute_actions_for: int | str = Field(0, description="No notifications of the rule this long after one fires.")
    action_groups: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "rule")

    @field_validator("split_by")
    @classmethod
    def _dims(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_DIMENSIONS:
            raise ValueError(f"at most {MAX_DIMENSIONS} dimensions")
        for name in value:
            if not _COLUMN.match(name):
                raise ValueError(f"{name!r} is not a column name (extend one in the query: | extend region = ...)")
        return list(dict.fromkeys(value))

    @field_validator("operator")
    @classmethod
    def _operator(cls, value: str) -> str:
        name = _OPERATOR_ALIASES.get(value.strip(), value.strip())
        if name not in OPERATORS and name not in DYNAMIC_OPERATORS:
            raise ValueError(f"unknown operator {value!r}: one of {', '.join(OPERATORS)}, GreaterOrLessThan "
                             "(dynamic only), or > >= < <= == !=")
        return name

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: int | str) -> int:
        text = str(value).strip().lower().removeprefix("sev")
        if not text.isdigit() or not 0 <= int(text) <= 4:
            raise ValueError("Sev0 (critical) to Sev4 (verbose), or 0 to 4")
        return int(text)


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    secret: str | None = Field(None, description="Signs the body: X-Insights-Signature: sha256=<HMAC>.")
    format: Literal["azure", "slack", "teams"] = "azure"


class ActionGroupSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    webhooks: list[Webhook] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "action group")

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.match(r"^[^@\s]+@[^@\s]+$", address):
                raise ValueError(f"{address!r} is not an email address")
        return value


class AvailabilitySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    url: str
    method: Literal["GET", "POST", "PUT", "HEAD"] = "GET"
    body: Any = None
    headers: dict[str, str] = Field(default_factory=dict)
    expected_status: int = Field(200, ge=100, le=599)
    content_match: str | None = None
    timeout: int | str = "PT30S"
    frequency: int | str = "PT5M"
    location: str = "local"
    enabled: StrictBool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "availability test")


def check_url(url: str, field: str) -> None:
    """Targets follow the destination policy: http(s) only, never a link-local, unspecified or
    multicast address (checked again, resolved, when it is called)."""
    parsed = urlparse(url)
    if parsed.scheme.lower() not in ("http", "https") or not parsed.hostname:
        raise SpecError(field, f"{url!r} is not an http(s) URL with a host")
    reason = forbidden_address(parsed.hostname)
    if reason:
        raise SpecError(field, reason)


def _model(model: type[BaseModel], body: object) -> Any:
    if not isinstance(body, dict):
        raise SpecError("body", "expected a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        raise SpecError(field, message) from None


def rule_spec(body: object, min_frequency_s: int) -> dict:
    """The stored form of a rule (durations in seconds), or SpecError."""
    spec: RuleSpec = _model(RuleSpec, body)
    frequency = seconds(spec.frequency, "frequency")
    if not min_frequency_s <= frequency <= MAX_DURATION_S:
        raise SpecError("frequency", f"between {min_frequency_s} s and 24 hours")
    window = seconds(spec.window, "window") if spec.window is not None else frequency
    if not 1 <= window <= 2 * MAX_DURATION_S:
        raise SpecError("window", "between 1 second and 48 hours")
    parse_measure(spec.measure)
    if spec.dynamic is None and spec.threshold is None:
        raise SpecError("threshold", "give a threshold, or dynamic: low|medium|high")
    if spec.dynamic is not None and spec.operator not in DYNAMIC_OPERATORS:
        raise SpecError("operator", f"a dynamic threshold takes one of {', '.join(DYNAMIC_OPERATORS)}")
    if spec.dynamic is None and spec.operator not in OPERATORS:
        raise SpecError("operator", "GreaterOrLessThan needs a dynamic threshold")
    if spec.failing_periods > spec.evaluation_periods:
        raise SpecError("failing_periods", "cannot exceed evaluation_periods")
    try:
        explain(spec.query)
    except KqlError as error:
        where = f" at line {error.line}, column {error.pos}" if error.line is not None else ""
        raise SpecError("query", f"{error.message}{where}") from None
    try:
        explain(measured_query(spec.model_dump()))
    except KqlError as error:
        raise SpecError("measure", f"the query's result cannot be measured by {spec.measure!r}"
                        f"{' split by ' + ', '.join(spec.split_by) if spec.split_by else ''}: {error.message}") from None
    return {**spec.model_dump(), "frequency": frequency, "window": window,
            "resolve_after": seconds(spec.resolve_after, "resolve_after"),
            "mute_actions_for": seconds(spec.mute_actions_for, "mute_actions_for")}


def action_group_spec(body: object) -> dict:
    spec: ActionGroupSpec = _model(ActionGroupSpec, body)
    for index, hook in enumerate(spec.webhooks):
        check_url(hook.url, f"webhooks.{index}.url")
    return spec.model_dump()


def availability_spec(body: object, min_frequency_s: int) -> dict:
    spec: AvailabilitySpec = _model(AvailabilitySpec, body)
    check_url(spec.url, "url")
    frequency = seconds(spec.frequency, "frequency")
    if not min_frequency_s <= frequency <= MAX_DURATION_S:
        raise SpecError("frequency", f"between {min_frequency_s} s and 24 hours")
    timeout = seconds(spec.timeout, "timeout")
    if not 1 <= timeout <= 120:
        raise SpecError("timeout", "between 1 and 120 seconds")
    return {**spec.model_dump(), "frequency": frequency, "timeout": timeout}
