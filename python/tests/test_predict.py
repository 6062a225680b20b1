"""quantrec.Model.predict against the `quantrec predict` CLI, every input form, and concurrency."""

from __future__ import annotations

import array

import numpy as np
import pytest

import quantrec
from conftest import FIXTURES, MODELS, bits, read_safetensors, run_threads, write_safetensors


@pytest.fixture(scope="module")
def cli_outputs(cli, artifacts, tmp_path_factory) -> dict:
    """`quantrec predict --inputs` of each fixture: name → {"output", "logits"}."""
    d = tmp_path_factory.mktemp("predict")
    out = {}
    for name in MODELS:
        p = d / f"{name}.out.safetensors"
        cli("predict", artifacts[name], "--inputs", FIXTURES / f"{name}.inputs.safetensors", "-o", p)
        out[name] = read_safetensors(p)
    return out


@pytest.mark.parametrize("name", MODELS)
def test_one_hot_equals_cli_bit_for_bit(name, artifacts, one_hot_cases):
    case = one_hot_cases[name]
    model = quantrec.Model.load(artifacts[name])
    p = model.predict(case["dense"], case["sparse"])
    z = model.predict(case["dense"], case["sparse"], logits=True)
    assert p.dtype == np.float32 and p.shape == (case["dense"].shape[0],)
    assert np.array_equal(bits(p), bits(case["output"]))
    assert np.array_equal(bits(z), bits(case["logits"]))


def _jagged(inputs: dict):
    """The fixture as KJT arrays: values table-major, lengths per (table, sample)."""
    t, values, lengths = 0, [], []
    b = inputs["dense"].shape[0]
    while f"indices_{t}" in inputs:
        o = np.append(inputs[f"offsets_{t}"], len(inputs[f"indices_{t}"]))
        values.append(inputs[f"indices_{t}"])
        lengths.append(np.diff(o))
        t += 1
    lengths = np.concatenate(lengths)
    assert len(lengths) == t * b
    return np.concatenate(values), lengths


class FakeKJT:
    """Duck-typed TorchRec KeyedJaggedTensor (values / offsets / weights_or_none)."""

    def __init__(self, values, lengths):
        self._v, self._o = values, np.concatenate([[0], np.cumsum(lengths)])

    def values(self):
        return self._v

    def offsets(self):
        return self._o

    def weights_or_none(self):
        return None


@pytest.mark.parametrize("name", MODELS)
def test_jagged_forms_equal_cli(name, artifacts, cli_outputs):
    inputs = read_safetensors(FIXTURES / f"{name}.inputs.safetensors")
    model = quantrec.Model.load(artifacts[name])
    values, lengths = _jagged(inputs)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    want = bits(cli_outputs[name]["output"])
    b = inputs["dense"].shape[0]
    z = model.predict(inputs["dense"], values=values, lengths=lengths, logits=True)
    assert np.array_equal(bits(z), bits(cli_outputs[name]["logits"]))
    # And PyTorch's reference, to a float tolerance (probabilities for dlrm, logits for TorchRec).
    ours = cli_outputs[name]["output"] if name == "dlrm_dot" else z
    np.testing.assert_allclose(ours, inputs["expected"], rtol=1e-4, atol=1e-6)
    for got in (
        model.predict(inputs["dense"], values=values, lengths=lengths),
        model.predict(inputs["dense"], values=values, lengths=lengths.reshape(-1, b)),
        model.predict(inputs["dense"], indices=values, offsets=offsets),
        model.predict(inputs["dense"], FakeKJT(values, lengths)),
    ):
        assert np.array_equal(bits(got), want)


def test_multi_hot_bags_equal_cli(cli, artifacts, tmp_path):
    """Random multi-hot bags (some empty) through a KJT and through `quantrec predict`."""
    model = quantrec.Model.load(artifacts["dlrm_dot"])
    rng = np.random.default_rng(3)
    b = 300
    dense = rng.standard_normal((b, model.n_dense)).astype(np.float32)
    tensors, values, lengths = {"dense": dense}, [], []
    for t, rows in enumerate(model.table_rows):
        ln = rng.integers(0, 5, size=b)
        ids = rng.integers(0, rows, size=int(ln.sum()))
        tensors[f"offsets_{t}"] = np.concatenate([[0], np.cumsum(ln)[:-1]]).astype(np.int64)
        tensors[f"indices_{t}"] = ids.astype(np.int64)
        values.append(ids)
        lengths.append(ln)
    write_safetensors(tmp_path / "in.safetensors", tensors)
    cli("predict", artifacts["dlrm_dot"], "--inputs", tmp_path / "in.safetensors", "-o", tmp_path / "out.safetensors")
    want = read_safetensors(tmp_path / "out.safetensors")
    values, lengths = np.concatenate(values), np.concatenate(lengths)
    got = model.predict(dense, values=values, lengths=lengths)
    assert np.array_equal(bits(got), bits(want["output"]))
    # Through KJT offsets every table reads a window of them over `values` (tables past the first
    # start mid-array), nothing converted.
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    before = model.input_bytes_copied
    assert np.array_equal(bits(model.predict(dense, values=values, offsets=offsets)), bits(want["output"]))
    z = model.predict(dense, values=values, offsets=offsets, logits=True)
    assert np.array_equal(bits(z), bits(want["logits"]))
    assert model.input_bytes_copied == before


def test_zero_copy_and_conversions(artifacts, one_hot_cases):
    dense, sparse = one_hot_cases["dlrm_dot"]["dense"], one_hot_cases["dlrm_dot"]["sparse"]
    x = quantrec.prepare_inputs(dense, sparse)
    assert np.shares_memory(x.dense, dense) and np.shares_memory(x.sparse, sparse)
    # Other dtypes and layouts are converted (a copy), with the same result.
    y = quantrec.prepare_inputs(dense.astype(np.float64), np.asfortranarray(sparse.astype(np.int32)))
    assert not np.shares_memory(y.dense, dense) and y.dense.dtype == np.float32 and y.sparse.flags.c_contiguous
    model = quantrec.Model.load(artifacts["dlrm_dot"])
    want = bits(model.predict(dense, sparse))
    assert np.array_equal(bits(model.predict(dense.astype(np.float64), sparse.astype(np.int32))), want)
    assert np.array_equal(bits(model.predict(dense.T.copy().T, np.asfortranarray(sparse))), want)


class TensorLike:
    """What a CPU torch tensor offers numpy: `__array__` (no torch needed)."""

    def __init__(self, a):
        self._a = a

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)


def test_tensor_like_and_buffer_protocol(artifacts, one_hot_cases):
    dense, sparse = one_hot_cases["dlrm_dot"]["dense"], one_hot_cases["dlrm_dot"]["sparse"]
    model = quantrec.Model.load(artifacts["dlrm_dot"])
    want = bits(model.predict(dense, sparse))
    x = quantrec.prepare_inputs(TensorLike(dense), TensorLike(sparse))
    assert np.shares_memory(x.dense, dense)
    assert np.array_equal(bits(model.predict(TensorLike(dense), TensorLike(sparse))), want)
    # Buffer protocol: a memoryview of the dense matrix, array.array of the jagged ids.
    values, lengths = sparse.T.reshape(-1), np.ones(sparse.size, np.int64)
    got = model.predict(memoryview(dense), values=array.array("q", values.tolist()), lengths=memoryview(lengths))
    assert np.array_equal(bits(got), want)


def test_properties_and_repr(artifacts):
    model = quantrec.Model.load(artifacts["torchrec_dlrm"])
    assert model.n_dense == 13 and model.n_tables == 8
    assert model.table_rows == [97, 1000, 500, 31, 2000, 12, 300, 77]
    assert model.config["dense_features"] == 13 and len(model.config["tables"]) == 8
    assert isinstance(model.plan, dict) and model.plan_summary
    assert model.bytes == model.dense_bytes + model.table_bytes
    # f32 tables: rows × 16 × 4 bytes.
    assert model.table_bytes == sum(model.table_rows) * 16 * 4
    assert 0 < model.bytes < model.file_bytes
    assert model.meta["config"] == model.config
    assert "quantrec.Model(" in repr(model) and str(artifacts["torchrec_dlrm"]) in repr(model)
    assert model.threads is None and not model.tables_in_memory


def test_tables_in_memory_and_own_pool_agree(artifacts, one_hot_cases):
    case = one_hot_cases["dlrm_dot"]
    dense, sparse = np.tile(case["dense"], (40, 1)), np.tile(case["sparse"], (40, 1))
    want = bits(quantrec.Model.load(artifacts["dlrm_dot"]).predict(dense, sparse))
    for m in (
        quantrec.Model.load(artifacts["dlrm_dot"], tables_in_memory=True),
        quantrec.Model.load(artifacts["dlrm_dot"], threads=1),
        quantrec.Model.load(artifacts["dlrm_dot"], threads=2),
    ):
        assert np.array_equal(bits(m.predict(dense, sparse)), want)
    assert quantrec.Model.load(artifacts["dlrm_dot"], threads=2).threads == 2


def test_empty_batch(artifacts):
    model = quantrec.Model.load(artifacts["dlrm_dot"])
    p = model.predict(np.zeros((0, 13), np.float32), np.zeros((0, 8), np.int64))
    assert p.shape == (0,) and p.dtype == np.float32


def test_concurrent_threads_equal_serial(artifacts):
    model = quantrec.Model.load(artifacts["dlrm_dot"])
    rng = np.random.default_rng(11)
    batches = []
    for _ in range(24):
        b = int(rng.integers(1, 3000))
        dense = rng.standard_normal((b, 13)).astype(np.float32)
        sparse = np.stack([rng.integers(0, r, size=b) for r in model.table_rows], axis=1)
        batches.append((dense, sparse))
    serial = [bits(model.predict(d, s)) for d, s in batches]
    results: dict = {}

    def work(worker: int) -> None:
        for rep in range(3):
            for i in range(worker % 4, len(batches), 2):
                results.setdefault((worker, rep, i), bits(model.predict(*batches[i])))

    run_threads(8, work)
    assert len(results) == sum(len(range(w % 4, len(batches), 2)) * 3 for w in range(8))
    for (_, _, i), got in results.items():
        assert np.array_equal(got, serial[i])
