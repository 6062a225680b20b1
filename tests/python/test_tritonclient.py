"""Triton's own Python client (tritonclient, HTTP and gRPC, with binary tensor data) against a
running `quantrec serve`.

The environment gives the server's addresses and the files to compare with:
QUANTREC_HTTP / QUANTREC_GRPC (host:port), QUANTREC_INPUTS (the fixture's inputs: dense,
offsets_t, indices_t, expected), QUANTREC_EXPECTED (`quantrec predict` of the same inputs:
`logits` and `output`), QUANTREC_MODEL (the model's name in the repository).
"""

import json
import os
import struct

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

HTTP = os.environ["QUANTREC_HTTP"]
GRPC = os.environ["QUANTREC_GRPC"]
MODEL = os.environ.get("QUANTREC_MODEL", "dlrm")
DTYPES = {"F32": np.float32, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        out[name] = np.frombuffer(data[lo:hi], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
    return out


@pytest.fixture(scope="module")
def case():
    inp = read_safetensors(os.environ["QUANTREC_INPUTS"])
    exp = read_safetensors(os.environ["QUANTREC_EXPECTED"])
    dense = np.ascontiguousarray(inp["dense"], dtype=np.float32)
    tables = sorted(int(k.split("_")[1]) for k in inp if k.startswith("indices_"))
    b = dense.shape[0]
    lengths, values = [], []
    for t in tables:
        offsets = inp[f"offsets_{t}"].astype(np.int64)
        ids = inp[f"indices_{t}"].astype(np.int64)
        ends = np.append(offsets[1:], len(ids)) if len(offsets) == b else offsets[1:]
        lengths.append(ends - offsets[:b])
        values.append(ids)
    return {
        "dense": dense,
        "lengths": np.ascontiguousarray(np.stack(lengths).astype(np.int32)),
        "values": np.ascontiguousarray(np.concatenate(values)),
        "logits": exp["logits"],
        "probs": exp["output"],
        "pytorch": inp["expected"],
    }


def inputs(mod, case, binary):
    ts = [
        mod.InferInput("dense", list(case["dense"].shape), "FP32"),
        mod.InferInput("sparse_lengths", list(case["lengths"].shape), "INT32"),
        mod.InferInput("sparse_values", list(case["values"].shape), "INT64"),
    ]
    for t, a in zip(ts, [case["dense"], case["lengths"], case["values"]]):
        if binary is None:
            t.set_data_from_numpy(a)
        else:
            t.set_data_from_numpy(a, binary_data=binary)
    return ts


def check(result, case):
    p = result.as_numpy("probability")
    l = result.as_numpy("logit")
    assert p.dtype == np.float32 and p.shape == case["probs"].shape
    assert np.array_equal(p.view(np.uint32), case["probs"].view(np.uint32))
    assert np.array_equal(l.view(np.uint32), case["logits"].view(np.uint32))
    # And close to PyTorch's own output (probabilities for this fixture).
    assert np.allclose(p, case["pytorch"], rtol=1e-5, atol=1e-7)


def test_http_health_metadata_config():
    c = httpclient.InferenceServerClient(HTTP)
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready(MODEL)
    md = c.get_model_metadata(MODEL)
    assert md["versions"] == ["1"]
    assert [i["name"] for i in md["inputs"]][:2] == ["dense", "sparse"]
    cfg = c.get_model_config(MODEL)
    assert cfg["max_batch_size"] > 0 and cfg["input"][0]["dims"] == [13]
    assert "binary_tensor_data" in c.get_server_metadata()["extensions"]
    assert c.get_model_repository_index()[0]["state"] == "READY"


@pytest.mark.parametrize("binary", [None, True, False])
def test_http_infer(case, binary):
    c = httpclient.InferenceServerClient(HTTP)
    outputs = None
    if binary is not None:
        outputs = [
            httpclient.InferRequestedOutput("probability", binary_data=binary),
            httpclient.InferRequestedOutput("logit", binary_data=binary),
        ]
    r = c.infer(MODEL, inputs(httpclient, case, binary), outputs=outputs, request_id="py-1")
    check(r, case)
    assert r.get_response()["id"] == "py-1"


def test_http_errors_and_stats(case):
    c = httpclient.InferenceServerClient(HTTP)
    with pytest.raises(InferenceServerException) as e:
        c.infer("no_such_model", inputs(httpclient, case, True))
    assert e.value.status() == "404"
    bad = inputs(httpclient, case, True)
    bad[0] = httpclient.InferInput("dense", [case["dense"].shape[0], 12], "FP32")
    bad[0].set_data_from_numpy(np.ascontiguousarray(case["dense"][:, :12]))
    with pytest.raises(InferenceServerException) as e:
        c.infer(MODEL, bad)
    assert e.value.status() == "400" and "dense" in e.value.message()
    stats = c.get_inference_statistics(MODEL)
    assert stats["model_stats"][0]["inference_count"] > 0


def test_grpc(case):
    c = grpcclient.InferenceServerClient(GRPC)
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready(MODEL)
    md = c.get_model_metadata(MODEL, as_json=True)
    assert md["inputs"][0]["shape"] == ["-1", "13"]
    cfg = c.get_model_config(MODEL, as_json=True)["config"]
    assert int(cfg["max_batch_size"]) > 0
    r = c.infer(MODEL, inputs(grpcclient, case, None), request_id="g-1")
    check(r, case)
    with pytest.raises(InferenceServerException) as e:
        c.infer("no_such_model", inputs(grpcclient, case, None))
    assert "NOT_FOUND" in str(e.value.status())
    st = c.get_inference_statistics(MODEL, as_json=True)
    assert int(st["model_stats"][0]["inference_count"]) > 0
    c.load_model(MODEL)
    check(c.infer(MODEL, inputs(grpcclient, case, None)), case)
