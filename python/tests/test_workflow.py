"""import_state_dict, quantize, evaluate and the Criteo features against the CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import quantrec
from quantrec import criteo
from conftest import CRITEO, FIXTURES, bits, read_safetensors

ROWS = 3000


def criteo_rows(n: int) -> dict:
    """The first n lines of the Criteo sample as raw columns (strings; empty = missing)."""
    names = ["label", *[f"I{i}" for i in range(1, 14)], *[f"C{i}" for i in range(1, 27)]]
    cols: dict = {k: [] for k in names}
    with open(CRITEO, newline="") as f:
        for i, line in enumerate(csv.reader(f, delimiter="\t")):
            if i == n:
                break
            for k, v in zip(names, line):
                cols[k].append(v)
    out = {k: np.array(v, dtype=object) for k, v in cols.items()}
    for k in names[:14]:
        out[k] = np.array([np.nan if v == "" else float(v) for v in cols[k]])
    return out


def test_import_state_dict_equals_cli_import(artifacts, one_hot_cases, tmp_path):
    for name, path in artifacts.items():
        m = quantrec.import_state_dict(FIXTURES / f"{name}.safetensors", tmp_path / f"{name}.py.safetensors")
        case = one_hot_cases[name]
        assert np.array_equal(bits(m.predict(case["dense"], case["sparse"])), bits(case["output"]))
        assert m.config == quantrec.Model.load(path).config
        assert m.meta["provenance"]["source_sha256"]


def test_import_overrides_and_plan(tmp_path):
    # A plan dict stores the model in that precision; an override that contradicts the weights is refused.
    f32 = quantrec.import_state_dict(FIXTURES / "dlrm_dot.safetensors", tmp_path / "a.safetensors")
    with pytest.raises(ValueError, match="override"):
        quantrec.import_state_dict(
            FIXTURES / "dlrm_dot.safetensors", tmp_path / "b.safetensors", overrides={"interaction": {"kind": "cat"}}
        )
    assert not (tmp_path / "b.safetensors").exists()
    plan = f32.plan
    assert quantrec.import_state_dict(FIXTURES / "dlrm_dot.safetensors", tmp_path / "c.safetensors", plan=plan).plan == plan


def test_criteo_features_equal_cli_predict_data(cli, artifacts, criteo_schema, tmp_path):
    out = tmp_path / "p.safetensors"
    cli("predict", artifacts["dlrm_dot"], "--data", CRITEO, "--schema", criteo_schema, "--rows", ROWS, "-o", out)
    want = read_safetensors(out)
    model = quantrec.Model.load(artifacts["dlrm_dot"])
    batch = criteo_rows(ROWS)
    d, s = criteo.default_columns(13, 8)
    dense, sparse = criteo.features(batch, model.table_rows, d, s)
    assert np.array_equal(bits(model.predict(dense, sparse)), bits(want["output"]))
    assert np.array_equal(criteo.labels(batch, "label"), want["labels"])


def test_criteo_features_refuse_bad_fields():
    with pytest.raises(ValueError, match="not a hexadecimal id"):
        criteo.sparse_ids([np.array(["0x1f"], dtype=object)], [10])
    with pytest.raises(ValueError, match="not in the batch"):
        criteo.features({"I1": np.zeros(2)}, [10], ["I1"], ["C1"])
    with pytest.raises(ValueError, match="infinite"):
        criteo.dense_features([np.array([np.inf])])
    assert criteo.sparse_ids([np.array(["", None, "ff"], dtype=object)], [7]).tolist() == [[0], [0], [255 % 7]]


def test_evaluate_equals_cli_eval(cli, artifacts, criteo_schema):
    args = ["--data", CRITEO, "--schema", criteo_schema, "--rows", ROWS, "--baseline", artifacts["dlrm_dot"]]
    want = json.loads(cli("eval", artifacts["dlrm_dot"], *args, "--json"))
    got = quantrec.evaluate(
        artifacts["dlrm_dot"], CRITEO, schema=criteo_schema, rows=ROWS, baseline=artifacts["dlrm_dot"]
    )
    assert got.rows == ROWS
    assert got.metrics == want["metrics"] and got.baseline == want["baseline"]
    assert got["delta_ne_percent"] == 0.0
    assert "NE" in str(got) and "EvalReport(rows=3000" in repr(got)


def test_quantize_equals_cli_quantize(cli, artifacts, criteo_schema, tmp_path):
    common = dict(plan="int8-dynamic", calib_rows=1000, eval_rows=ROWS, schema=criteo_schema, budget_ne=5.0)
    report = quantrec.quantize(artifacts["dlrm_dot"], CRITEO, CRITEO, tmp_path / "py.safetensors", **common)
    want = json.loads(
        cli(
            "quantize", artifacts["dlrm_dot"], "--calib", CRITEO, "--eval", CRITEO, "--schema", criteo_schema,
            "--plan", "int8-dynamic", "--calib-rows", 1000, "--eval-rows", ROWS, "--budget-ne", 5.0,
            "-o", tmp_path / "cli.safetensors", "--json",
        )
    )
    for k in ("bytes_f32", "bytes_quantized", "ne_f32", "ne_quantized", "delta_ne_pct", "auc_quantized", "plan"):
        assert getattr(report, k) == want[k], k
    assert report.bytes_quantized < report.bytes_f32 and report.compression > 1
    assert "QuantizeReport(" in repr(report)
    a, b = quantrec.Model.load(tmp_path / "py.safetensors"), quantrec.Model.load(tmp_path / "cli.safetensors")
    batch = criteo_rows(500)
    dense, sparse = criteo.features(batch, a.table_rows, *criteo.default_columns(13, 8))
    assert np.array_equal(bits(a.predict(dense, sparse)), bits(b.predict(dense, sparse)))
    with pytest.raises(ValueError, match="objective"):
        quantrec.quantize(artifacts["dlrm_dot"], CRITEO, CRITEO, tmp_path / "x.safetensors", objective="speed")
    with pytest.raises(OSError):
        quantrec.quantize(artifacts["dlrm_dot"], tmp_path / "none.tsv", CRITEO, tmp_path / "x.safetensors")
