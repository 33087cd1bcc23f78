"""The called service of the live tests: answers 200, or 500 when asked."""

import json

from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


def run(raw_data):
    if json.loads(raw_data or "{}").get("fail"):
        return AMLResponse(json.dumps({"error": "back asked to fail"}), 500)
    return {"ok": True}
