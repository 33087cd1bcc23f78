"""The KQL engine: our boundary around duckdb-kql.

Validate, translate, scope to the caller's services, execute read-only with a timeout and result
caps, and type the result as the App Insights query API does. Everything else in the collector
uses only these names.
"""

from .engine import explain, run_query
from .errors import KqlError
from .results import QueryResult
from .sandbox import SANDBOX

start_compilers = SANDBOX.start
"""Start the compile workers now, so that the first query does not wait for them (`create_app`)."""

__all__ = ["run_query", "explain", "QueryResult", "KqlError", "start_compilers"]
