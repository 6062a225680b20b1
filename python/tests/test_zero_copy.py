"""Zero-copy inputs: what Model.predict borrows, what it converts, and that either way the scores
are `quantrec predict`'s bits, from one thread or many."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import quantrec
from conftest import bits, run_threads

B = 200_000  # rows of the large batch: dense 10.4 MB, one-hot ids 12.8 MB


@pytest.fixture(scope="module")
def model(artifacts):
    return quantrec.Model.load(artifacts["dlrm_dot"])


@pytest.fixture(scope="module")
def large(model):
    """A large one-hot batch and the same ids as a KeyedJaggedTensor (values table-major)."""
    rng = np.random.default_rng(21)
    dense = rng.standard_normal((B, model.n_dense), dtype=np.float32)
    sparse = np.stack([rng.integers(0, r, size=B) for r in model.table_rows], axis=1).astype(np.int64)
    values = np.ascontiguousarray(sparse.T).reshape(-1)
    offsets = np.arange(values.size + 1, dtype=np.int64)
    lengths = np.ones(values.size, dtype=np.int64)
    return dense, sparse, values, offsets, lengths


def _copied(model, **kwargs) -> tuple:
    """(native bytes copied, Python bytes allocated at peak, probabilities) of one predict call."""
    before = model.input_bytes_copied
    tracemalloc.start()
    try:
        p = model.predict(**kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return model.input_bytes_copied - before, peak, p


def test_dense_and_jagged_offsets_are_borrowed_not_copied(model, large):
    dense, sparse, values, offsets, lengths = large
    t = model.n_tables
    copied, peak, by_offsets = _copied(model, dense=dense, values=values, offsets=offsets)
    assert copied == 0
    # numpy reports its allocations to tracemalloc: a Python-side copy of the inputs would show.
    assert peak < 100_000, f"{peak} bytes allocated on the Python side for {dense.nbytes + values.nbytes} of input"

    # What the other forms convert on the native side, exactly: KJT offsets from lengths, or the
    # one-hot transpose (every id once, plus the B + 1 offsets the tables share).
    copied, peak, by_lengths = _copied(model, dense=dense, values=values, lengths=lengths)
    assert copied == (t * B + 1) * 8 and peak < 100_000
    copied, peak, by_one_hot = _copied(model, dense=dense, sparse=sparse)
    assert copied == (t * B + B + 1) * 8 and peak < 100_000
    assert np.array_equal(bits(by_offsets), bits(by_lengths))
    assert np.array_equal(bits(by_offsets), bits(by_one_hot))

    # The measurement sees a copy when there is one: Fortran-order dense is converted in Python.
    copied, peak, converted = _copied(model, dense=np.asfortranarray(dense), values=values, offsets=offsets)
    assert copied == 0 and peak >= dense.nbytes
    assert np.array_equal(bits(converted), bits(by_offsets))


def test_other_layouts_and_dtypes_are_converted_with_the_same_scores(model, large):
    b = 1_000
    dense, sparse = large[0][:b], large[1][:b]
    values = np.ascontiguousarray(sparse.T).reshape(-1)
    offsets = np.arange(values.size + 1, dtype=np.int64)
    want = bits(model.predict(dense, values=values, offsets=offsets))
    wide = np.zeros((b, 2 * model.n_dense), np.float32)
    wide[:, ::2] = dense
    strided_values = np.repeat(values, 2)[::2]
    strided_offsets = np.repeat(offsets, 2)[::2]
    assert not wide[:, ::2].flags.c_contiguous and not strided_values.flags.c_contiguous
    for kwargs in (
        {"dense": wide[:, ::2], "values": values, "offsets": offsets},
        {"dense": dense.astype(np.float64), "values": values.astype(np.int32), "offsets": offsets.astype(np.uint32)},
        {"dense": dense, "values": strided_values, "offsets": strided_offsets},
        {"dense": dense, "sparse": np.asfortranarray(sparse.astype(np.int32))},
    ):
        assert np.array_equal(bits(model.predict(**kwargs)), want)
    with pytest.raises(ValueError, match="must hold integers"):
        model.predict(dense, values=values.astype(np.float32), offsets=offsets)
    with pytest.raises(ValueError, match="offsets decrease at 4"):
        bad = offsets.copy()
        bad[4] = bad[5] + 1
        model.predict(dense, values=values, offsets=bad)
    with pytest.raises(ValueError, match="the bags cover ids 0..7999 but values has 8000 ids"):
        model.predict(dense, values=values, offsets=np.minimum(offsets, values.size - 1))


@pytest.mark.parametrize("threads", [None, 2])
def test_threads_sharing_borrowed_arrays_equal_serial(artifacts, large, threads):
    """Eight threads score windows of the same borrowed arrays (dense rows, KJT values and
    offsets) at once, with the GIL released; every result equals the serial one."""
    model = quantrec.Model.load(artifacts["dlrm_dot"], threads=threads)
    dense, sparse = large[0][:20_000], large[1][:20_000]
    cases = []
    for lo, hi in [(0, 1), (5, 700), (1000, 4000), (4000, 20_000), (123, 9_999)]:
        s = sparse[lo:hi]
        values = np.ascontiguousarray(s.T).reshape(-1)
        cases.append((dense[lo:hi], values, np.arange(values.size + 1, dtype=np.int64), s))
    serial = [bits(model.predict(d, values=v, offsets=o)) for d, v, o, _ in cases]
    results: list = []

    def work(w: int) -> None:
        for rep in range(4):
            i = (w + rep) % len(cases)
            d, v, o, s = cases[i]
            results.append((i, bits(model.predict(d, values=v, offsets=o))))
            results.append((i, bits(model.predict(d, s))))

    run_threads(8, work)
    assert len(results) == 8 * 4 * 2
    for i, got in results:
        assert np.array_equal(got, serial[i])
