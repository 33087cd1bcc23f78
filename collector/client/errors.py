"""The errors a user of the SDK sees: one family, InsightsError."""

from __future__ import annotations


class InsightsError(Exception):
    """Anything that went wrong talking to the collector."""


class CollectorUnreachable(InsightsError):
    pass


class ApiError(InsightsError):
    """The collector said no: `status_code` and `message` are its own; `hint`, for 401 and 403,
    says where the key came from or every place one was looked for."""

    def __init__(self, status_code: int, message: str, hint: str | None = None):
        super().__init__(f"{status_code}: {message}" + (f" ({hint})" if hint else ""))
        self.status_code = status_code
        self.message = message
        self.hint = hint


class ConfigError(InsightsError):
    """A config file named or found is unusable; the message names it."""


class ScoringError(InsightsError):
    """A scoring call answered with an error status; `message` is the service's own."""

    def __init__(self, status_code: int, message: str, uri: str):
        super().__init__(f"{uri} answered {status_code}: {message}")
        self.status_code = status_code
        self.message = message


class DeploymentFailed(InsightsError):
    """A local wrapper exited or did not become ready; `logs` holds its console output."""

    def __init__(self, message: str, logs: str):
        super().__init__(f"{message}\n--- its console output (last lines) ---\n{logs}")
        self.logs = logs

