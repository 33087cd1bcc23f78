"""The errors a user of the SDK sees: one family, InsightsError."""

from __future__ import annotations


class InsightsError(Exception):
    """Anything that went wrong talking to the collector."""


class CollectorUnreachable(InsightsError):
    pass


class ApiError(InsightsError):
    def __init__(self, status_code: int, message: str):
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message


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

