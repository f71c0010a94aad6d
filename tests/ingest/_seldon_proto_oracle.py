"""Run by the MLServer venv's Python: OIP protobuf messages made with Seldon's own generated classes.

Prints JSON: for each message its serialized bytes (base64) and, where MLServer has a converter, the
REST JSON MLServer itself makes of it. tests/ingest/test_seldon.py decodes the bytes with inferlog
and compares. Not a test module (no ``test_`` prefix); it imports mlserver, which the project's
venv does not have.
"""

import base64
import json
import struct

from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc.converters import ModelInferRequestConverter, ModelInferResponseConverter

req = pb.ModelInferRequest(model_name="iris", id="req-1")
req.parameters["content_type"].string_param = "np"
req.parameters["priority"].int64_param = 3
t = req.inputs.add(name="x", datatype="FP32", shape=[1, 4])
t.contents.fp32_contents.extend([1.5, 2.5, 3.5, 4.5])
t = req.inputs.add(name="n", datatype="INT64", shape=[2])
t.contents.int64_contents.extend([7, -9])
t = req.inputs.add(name="s", datatype="BYTES", shape=[2])
t.contents.bytes_contents.extend([b"hello", b"world"])
t.parameters["content_type"].string_param = "str"
req.outputs.add(name="predict")
resp = pb.ModelInferResponse(model_name="iris", model_version="1", id="req-1")
o = resp.outputs.add(name="predict", datatype="INT64", shape=[1, 1])
o.contents.int64_contents.append(2)
raw = pb.ModelInferRequest(id="raw-1")
raw.inputs.add(name="x", datatype="FP64", shape=[2, 2])
raw.inputs.add(name="s", datatype="BYTES", shape=[2])
raw.raw_input_contents.append(struct.pack("<4d", 0.5, 1.0, -2.25, 3.0))
raw.raw_input_contents.append(struct.pack("<I", 3) + b"abc" + struct.pack("<I", 1) + b"z")
out = {}
for name, msg, conv in (
    ("request", req, ModelInferRequestConverter),
    ("response", resp, ModelInferResponseConverter),
    ("raw_request", raw, None),
):
    out[name] = {"bytes": base64.b64encode(msg.SerializeToString()).decode()}
    if conv is not None:
        out[name]["mlserver"] = json.loads(conv.to_types(msg).model_dump_json(exclude_none=True))
print(json.dumps(out))
