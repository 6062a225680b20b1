"""Shared fixtures: the quantrec CLI, the ../shared fixtures, artifacts imported by the CLI."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("QUANTREC_SHARED", ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures"
CRITEO = SHARED / "data" / "criteo-dac-sample" / "train.txt"
MODELS = ["dlrm_dot", "torchrec_dlrm"]

def pytest_addoption(parser):
    parser.addoption("--ray", action="store_true", help="also run the tests marked ray (needs ray[data])")


def pytest_configure(config):
    if config.getoption("--ray"):
        try:
            import ray  # noqa: F401
        except ImportError as e:
            raise pytest.UsageError(f"--ray given but ray cannot be imported: {e}") from e


def pytest_collection_modifyitems(config, items):
    if config.getoption("--ray"):
        return
    skip = pytest.mark.skip(reason="Ray test: run with --ray (.ci/run does)")
    for item in items:
        if "ray" in item.keywords:
            item.add_marker(skip)


_DTYPES = {"F32": np.float32, "I64": np.int64, "I32": np.int32, "F64": np.float64}


def read_safetensors(path: Path) -> dict:
    """Every tensor of a safetensors file as a numpy array (the format: u64 header length,
    JSON header, raw little-endian data)."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        out[name] = np.frombuffer(data[lo:hi], dtype=_DTYPES[t["dtype"]]).reshape(t["shape"]).copy()
    return out


def write_safetensors(path: Path, tensors: dict) -> None:
    """Writes numpy arrays as a safetensors file."""
    names = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": names[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def _binary() -> Path:
    if "QUANTREC_BIN" in os.environ:
        return Path(os.environ["QUANTREC_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release" / "quantrec"


@pytest.fixture(scope="session")
def cli():
    """Runs the quantrec binary; returns its stdout."""
    binary = _binary()
    if not binary.exists():
        pytest.fail(f"{binary} not found: `cargo build --release --bin quantrec` (or set QUANTREC_BIN)")

    def run(*args: object) -> str:
        r = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise AssertionError(f"quantrec {' '.join(map(str, args))} failed:\n{r.stderr}")
        return r.stdout

    return run


@pytest.fixture(scope="session")
def artifacts(cli, tmp_path_factory) -> dict:
    """The fixture state dicts imported by `quantrec import`: name → artifact path."""
    d = tmp_path_factory.mktemp("artifacts")
    out = {}
    for name in MODELS:
        out[name] = d / f"{name}.safetensors"
        cli("import", FIXTURES / f"{name}.safetensors", "-o", out[name])
    return out


@pytest.fixture(scope="session")
def one_hot_cases(cli, artifacts, tmp_path_factory) -> dict:
    """One-hot batches (the fixture's dense features, seeded random ids, one per table) with
    `quantrec predict`'s outputs on them: name → {"dense", "sparse", "output", "logits"}."""
    d = tmp_path_factory.mktemp("one_hot")
    rng = np.random.default_rng(5)
    out = {}
    for name in MODELS:
        dense = read_safetensors(FIXTURES / f"{name}.inputs.safetensors")["dense"]
        rows = json.loads((FIXTURES / f"{name}.json").read_text())["table_rows"]
        b = dense.shape[0]
        sparse = np.stack([rng.integers(0, r, size=b) for r in rows], axis=1).astype(np.int64)
        tensors = {"dense": dense}
        for t in range(len(rows)):
            tensors[f"offsets_{t}"] = np.arange(b, dtype=np.int64)
            tensors[f"indices_{t}"] = np.ascontiguousarray(sparse[:, t])
        write_safetensors(d / f"{name}.in.safetensors", tensors)
        cli("predict", artifacts[name], "--inputs", d / f"{name}.in.safetensors", "-o", d / f"{name}.out.safetensors")
        out[name] = {"dense": dense, "sparse": sparse, **read_safetensors(d / f"{name}.out.safetensors")}
    return out


@pytest.fixture(scope="session")
def criteo_schema(tmp_path_factory) -> Path:
    """Criteo's layout read for the fixtures' 8 tables: label, I1..I13 (log1p), C1..C8 (hex),
    C9..C26 ignored."""
    cols = [{"name": "label", "role": "label"}]
    cols += [{"name": f"I{i}", "role": "dense"} for i in range(1, 14)]
    cols += [{"name": f"C{i}", "role": "sparse", "kind": "hex"} for i in range(1, 9)]
    cols += [{"name": f"C{i}", "role": "ignore"} for i in range(9, 27)]
    p = tmp_path_factory.mktemp("schema") / "criteo8.json"
    p.write_text(json.dumps({"columns": cols}))
    return p


def run_threads(n: int, work) -> None:
    """Runs ``work(i)`` on ``n`` threads at once (bounded wait); re-raises the first failure."""
    errors: list = []

    def guarded(i: int) -> None:
        try:
            work(i)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread did not finish within 300 s"
    if errors:
        raise errors[0]


def bits(a: np.ndarray) -> np.ndarray:
    """The float32 values as their bit patterns (so NaNs and signed zeros compare exactly)."""
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
