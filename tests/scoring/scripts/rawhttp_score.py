"""@rawhttp with the legacy azureml.contrib.services import paths."""

from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request: AMLRequest):
    if request.method == "GET":
        return AMLResponse(f"hello {request.args.get('name')}", 200)
    if request.headers.get("x-overloaded"):
        return AMLResponse("overloaded", 503)
    body = request.get_data()
    return AMLResponse(body[::-1], 201, {"Content-Type": "application/octet-stream", "X-Custom": "a, b"})
