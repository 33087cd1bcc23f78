"""azureml-core's model and deployment flow, as the Azure ML guides write it, against a real
collector and real wrappers: register a scikit-learn model, Model.deploy with a LocalWebservice,
run, reload an edited score.py, update to a second model version, read the logs, delete; and a
score.py whose Model.get_model_path finds its model, or fails as it does in Azure."""

from __future__ import annotations

import json
import time

import joblib
import pytest
from collector_process import free_port
from sklearn.linear_model import LinearRegression

from collector.client import DeploymentFailed, InferenceConfig, LocalWebservice, Model, Workspace

SCORE = '''
import json, os
import joblib
from azureml.core.model import Model

def init():
    global model
    path = Model.get_model_path(model_name="{model}")
    model = joblib.load(path)
    print("init: loaded", path, "script {tag}")

def run(raw_data):
    data = json.loads(raw_data)["data"]
    return {{"prediction": model.predict(data).tolist(), "script": "{tag}",
             "model_dir": os.environ["AZUREML_MODEL_DIR"]}}
'''


def _train(path, slope: float) -> None:
    joblib.dump(LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, slope, 2 * slope]), path)


@pytest.fixture
def ws(collector):
    return Workspace(collector.url, api_key=collector.admin_key)


def test_register_deploy_run_reload_update_logs_delete(ws, tmp_path):
    name = f"mymodel-{time.monotonic_ns() % 10**6}"
    model_name = f"my_best_model_{time.monotonic_ns() % 10**6}"
    _train(tmp_path / "my_model.pkl", 2.0)
    (tmp_path / "score.py").write_text(SCORE.format(model=model_name, tag="A"))
    (tmp_path / "myenv.yml").write_text("dependencies:\n  - scikit-learn\n")
    model = Model.register(workspace=ws, model_path=tmp_path / "my_model.pkl", model_name=model_name,
                           tags={"area": "test"}, description="y = 2x")
    assert (model.version, model.tags, Model(ws, model_name).id) == (1, {"area": "test"}, f"{model_name}:1")
    inference_config = InferenceConfig(runtime="python", entry_script="score.py", source_directory=tmp_path,
                                       conda_file="myenv.yml")
    deployment_config = LocalWebservice.deploy_configuration(port=free_port())
    service = Model.deploy(ws, name, [model], inference_config, deployment_config)
    try:
        service.wait_for_deployment(show_output=True, timeout_sec=60)
        assert service.port == deployment_config.port and service.state == "Healthy"
        first = service.run(input_data=json.dumps({"data": [[3.0]]}))
        assert first["script"] == "A" and first["prediction"] == pytest.approx([6.0])
        assert first["model_dir"].endswith(f"azureml-models/{model_name}/1")  # one model: its version folder

        (tmp_path / "score.py").write_text(SCORE.format(model=model_name, tag="B"))
        service.reload()
        again = service.run(input_data=json.dumps({"data": [[3.0]]}))
        assert again["script"] == "B" and service.port == deployment_config.port

        _train(tmp_path / "my_model.pkl", 10.0)
        different_model = Model.register(ws, tmp_path / "my_model.pkl", model_name)
        service.update(models=[different_model], inference_config=inference_config)
        updated = service.run(input_data=json.dumps({"data": [[3.0]]}))
        assert updated["prediction"] == pytest.approx([30.0]) and updated["model_dir"].endswith(f"{model_name}/2")
        assert service.port == deployment_config.port

        logs = _eventually(lambda: ws.webservices[name].get_logs(), "script B")
        assert "init: loaded" in logs and "reloaded" in logs
    finally:
        service.delete()
    assert service.state == "Stopped"
    assert [m.version for m in Model.list(ws, name=model_name)] == [2, 1]


def test_get_model_path_fails_as_in_azure_when_the_model_is_not_deployed(ws, tmp_path):
    present = f"present_{time.monotonic_ns() % 10**6}"
    _train(tmp_path / "model.pkl", 1.0)
    model = Model.register(ws, tmp_path / "model.pkl", present)
    (tmp_path / "score.py").write_text(SCORE.format(model="absent_model", tag="X"))
    with pytest.raises(DeploymentFailed) as failed:
        Model.deploy(ws, f"absent-{time.monotonic_ns() % 10**6}", [model],
                     InferenceConfig(entry_script=tmp_path / "score.py"), LocalWebservice.deploy_configuration())
    assert "azureml.exceptions.ModelNotFoundException" in failed.value.logs or \
        "ModelNotFoundException" in failed.value.logs
    assert "Model absent_model not found in cache at " in failed.value.logs
    assert "For more info, set logging level to DEBUG." in failed.value.logs


def test_several_models_are_laid_out_by_name_and_version(ws, tmp_path):
    first, second = (f"multi_{i}_{time.monotonic_ns() % 10**6}" for i in (1, 2))
    _train(tmp_path / "a.pkl", 1.0)
    (tmp_path / "folder").mkdir()
    _train(tmp_path / "folder" / "b.pkl", 3.0)
    models = [Model.register(ws, tmp_path / "a.pkl", first), Model.register(ws, tmp_path / "folder", second)]
    (tmp_path / "score.py").write_text(
        "import os\nfrom azureml.core.model import Model\n"
        "def init():\n    pass\n"
        "def run(raw):\n"
        f"    return [Model.get_model_path({first!r}), Model.get_model_path({second!r}, version=1),\n"
        "            os.environ['AZUREML_MODEL_DIR'], sorted(os.listdir(os.environ['AZUREML_MODEL_DIR']))]\n")
    with Model.deploy(ws, f"multi-{time.monotonic_ns() % 10**6}", models, InferenceConfig("score.py", tmp_path)) as service:
        paths = service.run("{}")
    assert paths[0].endswith(f"azureml-models/{first}/1/a.pkl")
    assert paths[1].endswith(f"azureml-models/{second}/1/folder")
    assert paths[2].endswith("azureml-models") and paths[3] == sorted([first, second])


def _eventually(read, needle: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = read()
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.3)
