"""run() decorated with inference-schema, with request_headers."""

from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("values", StandardPythonParameterType([1.0, 2.0]))
@input_schema("scale", StandardPythonParameterType(2.0))
@output_schema(StandardPythonParameterType([2.0, 4.0]))
def run(values, scale, request_headers):
    return {"scaled": [v * scale for v in values], "agent": request_headers.get("User-Agent", "")[:5]}
