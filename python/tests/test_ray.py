"""quantrec.ray on a local Ray cluster (2 CPUs): actors score exactly as one process does."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

import quantrec
import quantrec.ray
from conftest import CRITEO, bits, read_safetensors

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray", reason="ray is not installed (`pip install 'ray[data]'`; .ci/run installs it)")

ROWS = 100_000
TABLE_ROWS = [97, 1000, 500, 31, 2000, 12, 300, 77]


def synthetic(ids: np.ndarray) -> tuple:
    """Deterministic features of row ids (the same in the driver and in Ray tasks)."""
    ids = ids.astype(np.int64)
    j = np.arange(13, dtype=np.int64)
    dense = (((ids[:, None] * 2654435761 + j * 40503) % 1000) / 250.0).astype(np.float32)
    sparse = np.stack([(ids * (7919 + 104729 * t) + t) % r for t, r in enumerate(TABLE_ROWS)], axis=1)
    return dense, sparse


class TimedPredictor(quantrec.ray.Predictor):
    """The Predictor, also recording each batch's scoring time (spread over its rows)."""

    def __call__(self, batch: dict) -> dict:
        t0 = time.perf_counter()
        out = super().__call__(batch)
        out["seconds"] = np.full(len(out["id"]), (time.perf_counter() - t0) / len(out["id"]))
        return out


def add_features(batch: dict) -> dict:
    dense, sparse = synthetic(batch["id"])
    return {"id": batch["id"], "dense": dense, "sparse": sparse}


@pytest.fixture(scope="module")
def cluster():
    import sys

    # Ray workers cannot import this test module: ship its functions by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no usage report to the network
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False, configure_logging=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield
    ray.shutdown()


def test_predictor_two_actors_equal_single_process(cluster, cli, artifacts, capsys):
    path = str(artifacts["dlrm_dot"])
    ds = ray.data.range(ROWS, override_num_blocks=8).map_batches(add_features, batch_format="numpy")
    ds = ds.materialize()
    start = time.perf_counter()
    scored = ds.map_batches(
        TimedPredictor,
        fn_constructor_args=(path,),
        fn_constructor_kwargs={"threads": 1, "drop_columns": ["dense", "sparse"]},
        batch_format="numpy",
        batch_size=4096,
        compute=ray.data.ActorPoolStrategy(size=2),
        num_cpus=1,
    ).materialize()
    seconds = time.perf_counter() - start
    got = scored.to_numpy_refs()
    cols = [ray.get(r) for r in got]
    ids = np.concatenate([c["id"] for c in cols])
    probs = np.concatenate([c["probability"] for c in cols])
    actor_seconds = float(np.concatenate([c["seconds"] for c in cols]).sum())
    assert len(ids) == ROWS and np.array_equal(np.sort(ids), np.arange(ROWS))
    order = np.argsort(ids)
    model = quantrec.Model.load(path, threads=1)
    dense, sparse = synthetic(np.arange(ROWS))
    t0 = time.perf_counter()
    want = model.predict(dense, sparse)
    single = time.perf_counter() - t0
    assert np.array_equal(bits(probs[order]), bits(want))
    lines = cli("bench", "model", path, "--batch", 4096, "--threads", 1, "--quick", "--json", "-").splitlines()
    bench = [json.loads(x)["rate"] for x in lines if x.startswith("{") and '"dlrm_predict"' in x]
    assert len(bench) == 1
    with capsys.disabled():
        print(
            f"\n[ray] {ROWS} rows over 2 actors × 1 thread, batch 4096: stage {ROWS / seconds:,.0f} rows/s "
            f"(wall time incl. actor start-up, {seconds:.1f} s); inside the actors "
            f"{ROWS / actor_seconds:,.0f} rows/s per actor (≈ {2 * ROWS / actor_seconds:,.0f} rows/s for 2); "
            f"one process, 1 thread, one call: {ROWS / single:,.0f} rows/s; "
            f"`quantrec bench model --batch 4096 --threads 1`: {bench[0]:,.0f} rows/s"
        )


def test_score_parquet_tsv_and_parquet_equal_cli(cluster, cli, artifacts, criteo_schema, tmp_path):
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = artifacts["dlrm_dot"]
    want = tmp_path / "cli.safetensors"
    cli("predict", path, "--data", CRITEO, "--schema", criteo_schema, "-o", want)
    want = read_safetensors(want)

    def read_back(d):
        files = sorted(f for f in os.listdir(d) if f.endswith(".parquet"))
        return pa.concat_tables([pq.read_table(os.path.join(d, f)) for f in files])

    n = quantrec.ray.score_parquet(path, str(CRITEO), tmp_path / "out_tsv", format="tsv", batch_size=1000)
    assert n == 10_000
    t = read_back(tmp_path / "out_tsv")
    assert n == len(want["output"]) == t.num_rows
    assert np.array_equal(bits(t["probability"].to_numpy()), bits(want["output"]))
    assert np.array_equal(t["label"].to_numpy(), want["labels"])

    # The same rows as Parquet (I columns as nullable ints, C columns as strings).
    names = ["label", *[f"I{i}" for i in range(1, 14)], *[f"C{i}" for i in range(1, 27)]]
    types = {c: pa.int64() if c.startswith("I") else pa.string() for c in names[1:]}
    types["label"] = pa.int64()
    table = pacsv.read_csv(
        CRITEO,
        read_options=pacsv.ReadOptions(column_names=names),
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=pacsv.ConvertOptions(column_types=types),
    )
    table = table.append_column("row", pa.array(np.arange(table.num_rows)))
    os.makedirs(tmp_path / "in_parquet")
    pq.write_table(table, tmp_path / "in_parquet" / "part-0.parquet", row_group_size=2500)
    n = quantrec.ray.score_parquet(
        path, str(tmp_path / "in_parquet"), tmp_path / "out_pq", batch_size=1000, keep_columns=("row",)
    )
    t = read_back(tmp_path / "out_pq")
    assert n == t.num_rows == len(want["output"]) and t.column_names == ["row", "probability"]
    rows = t["row"].to_numpy()
    assert np.array_equal(np.sort(rows), np.arange(n))
    assert np.array_equal(bits(t["probability"].to_numpy()[np.argsort(rows)]), bits(want["output"]))
