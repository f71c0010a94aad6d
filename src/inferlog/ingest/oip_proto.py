"""OIP gRPC messages (``inference.ModelInferRequest`` / ``ModelInferResponse``) -> their REST JSON form.

Seldon Core 2 writes these to Kafka by default. The wire format is read by Google's ``protobuf``
package (``pip install 'inferlog[seldon]'``); this module only declares the schema — the messages of
the OIP spec's ``open_inference_grpc.proto``, built as descriptors in code so that no
``protoc`` step or generated file is needed — and maps a parsed message to the REST JSON a record
keeps: ``contents`` or ``raw_*_contents`` become ``data``, ``InferParameter`` values plain values.
Seldon's and KServe's copies of the proto are subsets of this one (no ``double_param`` or
``uint64_param``), so their bytes parse the same.
"""

from __future__ import annotations

import base64
import struct
from functools import cache
from typing import Any

from inferlog.errors import ProtobufMissing, RecordInvalid

# datatype -> (InferTensorContents field, struct format of one raw little-endian element)
_CONTENTS: dict[str, tuple[str, str]] = {
    "BOOL": ("bool_contents", "?"),
    "UINT8": ("uint_contents", "B"),
    "UINT16": ("uint_contents", "H"),
    "UINT32": ("uint_contents", "I"),
    "UINT64": ("uint64_contents", "Q"),
    "INT8": ("int_contents", "b"),
    "INT16": ("int_contents", "h"),
    "INT32": ("int_contents", "i"),
    "INT64": ("int64_contents", "q"),
    "FP16": ("", "e"),
    "FP32": ("fp32_contents", "f"),
    "FP64": ("fp64_contents", "d"),
    "BYTES": ("bytes_contents", ""),
}


@cache
def _classes() -> tuple[Any, Any]:
    """The ModelInferRequest and ModelInferResponse message classes, built once from descriptors."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError:
        raise ProtobufMissing(
            "reading protobuf values needs the protobuf package: pip install 'inferlog[seldon]'"
        ) from None
    fdp = descriptor_pb2.FieldDescriptorProto
    optional, repeated = fdp.LABEL_OPTIONAL, fdp.LABEL_REPEATED

    def field(name: str, number: int, kind: int, label: int = optional, type_name: str = "") -> Any:
        made = fdp(name=name, number=number, type=kind, label=label)
        if type_name:  # set only for message fields: an empty type_name still counts as set
            made.type_name = type_name
        return made

    def params_entry(owner: str) -> Any:
        entry = descriptor_pb2.DescriptorProto(name="ParametersEntry")
        entry.field.extend(
            [
                field("key", 1, fdp.TYPE_STRING),
                field("value", 2, fdp.TYPE_MESSAGE, type_name=".inference.InferParameter"),
            ]
        )
        entry.options.map_entry = True
        return entry, field(
            "parameters", 4, fdp.TYPE_MESSAGE, repeated, f".inference.{owner}.ParametersEntry"
        )

    file = descriptor_pb2.FileDescriptorProto(name="inferlog_oip.proto", package="inference", syntax="proto3")
    param = file.message_type.add(name="InferParameter")
    param.oneof_decl.add(name="parameter_choice")
    for name, number, kind in (
        ("bool_param", 1, fdp.TYPE_BOOL),
        ("int64_param", 2, fdp.TYPE_INT64),
        ("string_param", 3, fdp.TYPE_STRING),
        ("double_param", 4, fdp.TYPE_DOUBLE),
        ("uint64_param", 5, fdp.TYPE_UINT64),
    ):
        param.field.append(field(name, number, kind))
        param.field[-1].oneof_index = 0
    contents = file.message_type.add(name="InferTensorContents")
    for name, number, kind in (
        ("bool_contents", 1, fdp.TYPE_BOOL),
        ("int_contents", 2, fdp.TYPE_INT32),
        ("int64_contents", 3, fdp.TYPE_INT64),
        ("uint_contents", 4, fdp.TYPE_UINT32),
        ("uint64_contents", 5, fdp.TYPE_UINT64),
        ("fp32_contents", 6, fdp.TYPE_FLOAT),
        ("fp64_contents", 7, fdp.TYPE_DOUBLE),
        ("bytes_contents", 8, fdp.TYPE_BYTES),
    ):
        contents.field.append(field(name, number, kind, repeated))

    def tensor(owner: str, name: str) -> Any:
        message = descriptor_pb2.DescriptorProto(name=name)
        entry, params = params_entry(f"{owner}.{name}")
        message.nested_type.append(entry)
        message.field.extend(
            [
                field("name", 1, fdp.TYPE_STRING),
                field("datatype", 2, fdp.TYPE_STRING),
                field("shape", 3, fdp.TYPE_INT64, repeated),
                params,
                field("contents", 5, fdp.TYPE_MESSAGE, type_name=".inference.InferTensorContents"),
            ]
        )
        return message

    for owner, tensors, raw in (
        ("ModelInferRequest", ("InferInputTensor", "inputs"), "raw_input_contents"),
        ("ModelInferResponse", ("InferOutputTensor", "outputs"), "raw_output_contents"),
    ):
        message = file.message_type.add(name=owner)
        entry, params = params_entry(owner)
        message.nested_type.extend([entry, tensor(owner, tensors[0])])
        message.field.extend(
            [
                field("model_name", 1, fdp.TYPE_STRING),
                field("model_version", 2, fdp.TYPE_STRING),
                field("id", 3, fdp.TYPE_STRING),
                params,
                field(tensors[1], 5, fdp.TYPE_MESSAGE, repeated, f".inference.{owner}.{tensors[0]}"),
            ]
        )
        if owner == "ModelInferRequest":
            wanted = descriptor_pb2.DescriptorProto(name="InferRequestedOutputTensor")
            entry, wanted_params = params_entry("ModelInferRequest.InferRequestedOutputTensor")
            wanted_params.number = 2
            wanted.nested_type.append(entry)
            wanted.field.extend([field("name", 1, fdp.TYPE_STRING), wanted_params])
            message.nested_type.append(wanted)
            message.field.append(
                field(
                    "outputs",
                    6,
                    fdp.TYPE_MESSAGE,
                    repeated,
                    ".inference.ModelInferRequest.InferRequestedOutputTensor",
                )
            )
            message.field.append(field(raw, 7, fdp.TYPE_BYTES, repeated))
        else:
            message.field.append(field(raw, 6, fdp.TYPE_BYTES, repeated))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelInferRequest")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelInferResponse")),
    )


def _params(entries: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in entries.items():
        which = value.WhichOneof("parameter_choice")
        out[key] = getattr(value, which) if which else None
    return out


def _bytes_element(value: bytes) -> Any:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode()}


def _raw_data(datatype: str, raw: bytes) -> list[Any]:
    """Elements of a ``raw_*_contents`` entry: little-endian values, or length-prefixed BYTES."""
    if datatype == "BYTES":
        items, at = [], 0
        while at + 4 <= len(raw):
            (size,) = struct.unpack_from("<I", raw, at)
            items.append(_bytes_element(raw[at + 4 : at + 4 + size]))
            at += 4 + size
        return items
    fmt = _CONTENTS[datatype][1]
    width = struct.calcsize(fmt)
    if len(raw) % width:
        raise RecordInvalid(
            f"raw {datatype} contents of {len(raw)} bytes is not whole elements", field="value"
        )
    return list(struct.unpack(f"<{len(raw) // width}{fmt}", raw))


def _tensor(message: Any, raw: bytes | None, with_data: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"name": message.name}
    if not with_data:
        if message.parameters:
            out["parameters"] = _params(message.parameters)
        return out
    datatype = message.datatype
    if datatype not in _CONTENTS:
        raise RecordInvalid(f"unknown OIP datatype {datatype!r}", field="datatype")
    out.update(shape=list(message.shape), datatype=datatype)
    if message.parameters:
        out["parameters"] = _params(message.parameters)
    if raw is not None:
        out["data"] = _raw_data(datatype, raw)
    else:
        field = _CONTENTS[datatype][0]
        values = list(getattr(message.contents, field)) if field else []
        out["data"] = [_bytes_element(v) for v in values] if datatype == "BYTES" else values
    return out


def _message(cls: Any, data: bytes) -> Any:
    from google.protobuf.message import DecodeError

    message = cls()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise RecordInvalid(f"the value is not a {cls.DESCRIPTOR.name} ({exc})", field="value") from None
    return message


def _common(message: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("model_name", "model_version", "id"):
        if getattr(message, name):
            out[name] = getattr(message, name)
    if message.parameters:
        out["parameters"] = _params(message.parameters)
    return out


def request_json(data: bytes) -> dict[str, Any]:
    """A serialized ModelInferRequest as the OIP REST request (plus model_name/model_version if set)."""
    message = _message(_classes()[0], data)
    raw = list(message.raw_input_contents)
    out = _common(message)
    out["inputs"] = [_tensor(t, raw[i] if raw else None) for i, t in enumerate(message.inputs)]
    if message.outputs:
        out["outputs"] = [_tensor(t, None, with_data=False) for t in message.outputs]
    return out


def response_json(data: bytes) -> dict[str, Any]:
    """A serialized ModelInferResponse as the OIP REST response."""
    message = _message(_classes()[1], data)
    raw = list(message.raw_output_contents)
    out = _common(message)
    out["outputs"] = [_tensor(t, raw[i] if raw else None) for i, t in enumerate(message.outputs)]
    return out


def strip_confluent(data: bytes) -> bytes:
    """A value in Confluent Schema Registry framing without it (magic 0, schema id, message indexes).

    The message-index list is a zigzag varint count then that many varints; a lone ``0`` byte is the
    common "first message" shorthand. Only that shorthand and a single index are accepted here.
    """
    if len(data) < 6 or data[0] != 0:
        return data
    body = data[5:]
    if body[0] == 0:  # [0]: the first message type of the schema
        return body[1:]
    if body[0] == 2 and len(body) > 2 and body[1] < 0x80:  # count 1 (zigzag 2), one small index
        return body[2:]
    raise RecordInvalid(
        "a Confluent-framed value with nested message indexes is not read here", field="value"
    )
