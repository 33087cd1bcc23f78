"""The Python SDK, in the shape Azure ML users know:

    from collector.client import Workspace, Webservice
    ws = Workspace("http://127.0.0.1:8080", api_key="...")
    svc = Webservice(ws, "my-service")
    svc.update(enable_app_insights=True)
    svc.state, svc.scoring_uri          # what its running wrapper last reported

    local = LocalWebservice.deploy(ws, "my-service", "score.py", model_dir="model",
                                   deployment_config=Webservice.deploy_configuration(port=5001))
    local.run({"data": [[1, 2]]}); local.get_logs(); local.delete()

    model = Model.register(ws, "my_model.pkl", "my_best_model")         # azureml-core's model flow
    service = Model.deploy(ws, "mymodel", [model], InferenceConfig(entry_script="score.py"),
                           LocalWebservice.deploy_configuration(port=8890))
    service.reload(); service.update(models=[model]); service.delete()
    alerts = Alerts(ws, "my-service")    # alert rules, action groups, availability tests

Every error a user sees is an InsightsError: CollectorUnreachable when nothing answers at the URL,
ApiError (with the HTTP status and the collector's message) when the collector said no, ConfigError
when a config file is missing or unreadable, ScoringError when a scoring call failed, and
DeploymentFailed when a local wrapper did not come up (with its console output).

Where the collector is and which key to present, for the SDK and for every command, is
`resolve_collector()` (arguments, a config file when asked for, INSIGHTS_URL / INSIGHTS_API_KEY,
then the local data dir's admin.key); a 401 or 403 names where the key came from, or every place
it was looked for.
"""

from collector.client.alerts import Alerts
from collector.client.endpoints import OnlineEndpoint
from collector.client.errors import (
    ApiError,
    CollectorUnreachable,
    ConfigError,
    DeploymentFailed,
    InsightsError,
    ScoringError,
)
from collector.client.layout import InferenceConfig
from collector.client.live import LiveMetrics, application_map
from collector.client.local import LocalWebservice
from collector.client.model import Model
from collector.client.monitors import ModelMonitor, payload_logging, set_payload_logging, upload_reference
from collector.client.resolve import CONFIG_FILES, DEFAULT_DATA_DIR, DEFAULT_URL, Connection, resolve_collector
from collector.client.workspace import DeploymentConfiguration, Webservice, Workspace

__all__ = ["Workspace", "Webservice", "LocalWebservice", "DeploymentConfiguration", "InsightsError",
           "CollectorUnreachable", "ApiError", "ConfigError", "ScoringError", "DeploymentFailed",
           "resolve_collector", "Connection", "DEFAULT_URL", "DEFAULT_DATA_DIR", "CONFIG_FILES",
           "Model", "InferenceConfig", "OnlineEndpoint", "LiveMetrics", "application_map", "Alerts",
           "ModelMonitor", "upload_reference", "set_payload_logging", "payload_logging"]
