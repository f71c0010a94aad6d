"""OIP request/response JSON to record fields (pure)."""

from __future__ import annotations

from inferlog.ingest import oip

REQ = {"id": "1", "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [0.5, 1.5]}]}
RESP = {
    "model_name": "iris",
    "model_version": "2",
    "id": "1",
    "outputs": [{"name": "y", "shape": [1], "datatype": "INT64", "data": [2]}],
}


def test_infer_paths_parse() -> None:
    """Infer paths give name and optional version; other paths give None."""
    assert oip.parse_infer_path("/v2/models/iris/infer") == ("iris", None)
    assert oip.parse_infer_path("/v2/models/iris/versions/3/infer") == ("iris", "3")
    assert oip.parse_infer_path("/v2/models/iris") is None
    assert oip.parse_infer_path("/v2/health/ready") is None


def test_ok_response_fields() -> None:
    """The model comes from the response; tensors are kept as they are; metadata becomes attributes."""
    got = oip.to_fields("/v2/models/iris/infer", REQ, RESP, 200, {"platform": "sklearn", "versions": ["2"]})
    assert (got.model.name, got.model.version) == ("iris", "2")
    assert got.input == REQ
    assert got.output == RESP
    assert got.status == "ok"
    assert got.error is None
    assert got.attributes["model_platform"] == "sklearn"
    assert got.attributes["model_versions"] == ["2"]


def test_model_from_url_without_response_fields() -> None:
    """Without model_name in the response the URL's name and version are used."""
    got = oip.to_fields("/v2/models/m/versions/7/infer", REQ, {"outputs": []}, 200)
    assert (got.model.name, got.model.version) == ("m", "7")


def test_error_response_is_an_error_record() -> None:
    """An OIP {"error": ...} with a 4xx status is an error with that status and message."""
    got = oip.to_fields("/v2/models/iris/infer", REQ, {"error": "bad shape"}, 400)
    assert got.status == "error"
    assert got.error is not None
    assert got.error.type == "HTTP 400"
    assert got.error.message == "bad shape"
    assert got.attributes["http_status"] == 400
