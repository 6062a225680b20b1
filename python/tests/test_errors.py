"""Bad inputs and files raise ValueError / OSError with the library's message; nothing crashes."""

from __future__ import annotations

import numpy as np
import pytest

import quantrec
from conftest import FIXTURES


@pytest.fixture(scope="module")
def model(artifacts):
    return quantrec.Model.load(artifacts["dlrm_dot"])


@pytest.fixture(scope="module")
def batch(one_hot_cases):
    return one_hot_cases["dlrm_dot"]["dense"], one_hot_cases["dlrm_dot"]["sparse"]


def test_shapes(model, batch):
    dense, sparse = batch
    with pytest.raises(ValueError, match="13 dense features"):
        model.predict(dense[:, :12], sparse)
    with pytest.raises(ValueError, match="expected \\[B, n_tables\\]"):
        model.predict(dense, sparse[:, :7])
    with pytest.raises(ValueError, match="rows but dense has"):
        model.predict(dense, sparse[:-1])
    with pytest.raises(ValueError, match="must be 2-D"):
        model.predict(dense[0], sparse)
    with pytest.raises(ValueError, match="8 tables: pass sparse"):
        model.predict(dense)


def test_ids(model, batch):
    dense, sparse = batch
    bad = sparse.copy()
    bad[5, 2] = model.table_rows[2]
    with pytest.raises(ValueError, match="out of range in table 2"):
        model.predict(dense, bad)
    bad[5, 2] = -1
    with pytest.raises(ValueError, match="table 2"):
        model.predict(dense, bad)
    with pytest.raises(ValueError, match="must hold integers"):
        model.predict(dense, sparse.astype(np.float32))
    with pytest.raises(ValueError, match="beyond int64"):
        model.predict(dense, np.full(sparse.shape, 2**63, dtype=np.uint64))


def test_nonfinite_dense(model, batch):
    dense, sparse = batch
    d = dense.copy()
    d[3, 4] = np.nan
    with pytest.raises(ValueError, match="sample 3 dense feature 4 is NaN"):
        model.predict(d, sparse)
    p = model.predict(d, sparse, allow_nonfinite=True)
    # Scored anyway (the other samples as usual; sample 3's score is meaningless).
    assert np.array_equal(np.delete(p, 3), np.delete(model.predict(dense, sparse), 3))
    with pytest.raises(ValueError, match="must hold numbers"):
        model.predict(dense.astype(str), sparse)


def test_jagged(model, batch):
    dense, sparse = batch
    b = len(dense)
    values = sparse.T.reshape(-1).copy()
    lengths = np.ones(8 * b, np.int64)
    model.predict(dense, values=values, lengths=lengths)  # the valid form
    with pytest.raises(ValueError, match="n_tables \\* B"):
        model.predict(dense, values=values, lengths=lengths[:-1])
    neg = lengths.copy()
    neg[0], neg[1] = -1, 3
    with pytest.raises(ValueError, match="cannot be negative"):
        model.predict(dense, values=values, lengths=neg)
    with pytest.raises(ValueError, match="values has"):
        model.predict(dense, values=values[:-1], lengths=lengths)
    offsets = np.arange(8 * b + 1, dtype=np.int64)
    dec = offsets.copy()
    dec[4] = 100
    with pytest.raises(ValueError, match="offsets decrease"):
        model.predict(dense, values=values, offsets=dec)
    with pytest.raises(ValueError, match="trailing end"):
        model.predict(dense, values=values, offsets=offsets[:-1])
    with pytest.raises(ValueError, match="start at 0"):
        model.predict(dense, values=values, offsets=offsets + 1)
    with pytest.raises(ValueError, match="exactly one of lengths"):
        model.predict(dense, values=values)
    with pytest.raises(ValueError, match="exactly one of lengths"):
        model.predict(dense, values=values, lengths=lengths, offsets=offsets)
    with pytest.raises(ValueError, match="exactly one of lengths"):
        model.predict(dense, sparse, values=values, lengths=lengths)
    with pytest.raises(ValueError, match="same argument"):
        model.predict(dense, values=values, indices=values, lengths=lengths)
    with pytest.raises(ValueError, match="one per id"):
        model.predict(dense, values=values, lengths=lengths, weights=np.ones(3, np.float32))


def test_not_array(model):
    class Broken:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("Can't call numpy() on Tensor that requires grad")

    with pytest.raises(ValueError, match="requires grad"):
        model.predict(Broken())


def test_files(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        quantrec.Model.load(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(ValueError, match="junk.safetensors"):
        quantrec.Model.load(junk)
    # A state dict is not an artifact.
    with pytest.raises(ValueError):
        quantrec.Model.load(FIXTURES / "dlrm_dot.safetensors")
    with pytest.raises(ValueError, match="threads must be at least 1"):
        quantrec.Model.load(model.path, threads=0)
    with pytest.raises(OSError):
        quantrec.import_state_dict(tmp_path / "missing.safetensors", tmp_path / "o.safetensors")
    with pytest.raises(ValueError):
        quantrec.import_state_dict(junk, tmp_path / "o.safetensors")
    with pytest.raises(OSError):
        quantrec.evaluate(model.path, tmp_path / "missing.tsv")
