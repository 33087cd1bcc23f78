"""The calling service of the live tests: each request calls the back service (BACK_URL) once;
{"fail": true} answers 500 after the call, {"external": true} also calls a closed port
(a failing external dependency), {"back_fail": true} asks the back service to fail."""

import json
import os
import urllib.error
import urllib.request

from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


def _call(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


def run(raw_data):
    request = json.loads(raw_data)
    status = _call(os.environ["BACK_URL"] + "/score", {"fail": bool(request.get("back_fail"))})
    if request.get("external"):
        _call("http://127.0.0.1:9/unreachable", {})
    if request.get("fail"):
        return AMLResponse(json.dumps({"error": "asked to fail"}), 500)
    return {"back": status}
