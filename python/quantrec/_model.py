"""The Python face of :class:`quantrec._quantrec.Model`: input conversion and documentation."""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple, Optional, Union

import numpy as np

from . import _quantrec

PathLike = Union[str, "os.PathLike[str]"]

_INT64_MAX = np.iinfo(np.int64).max


def _array(x: Any, name: str) -> np.ndarray:
    """``np.asarray(x)`` without copying (numpy arrays, buffer-protocol objects, ``__array__``)."""
    if isinstance(x, np.ndarray):
        return x
    try:
        # torch CPU tensors come through `__array__` (a view of the tensor's storage); memoryview,
        # array.array, bytes-like objects through the buffer protocol.
        return np.asarray(x)
    except (TypeError, RuntimeError, ValueError) as e:
        raise ValueError(
            f"{name}: cannot be read as an array ({e}); pass a numpy array, a CPU torch tensor "
            "(detached: t.detach()), or any object with the buffer protocol"
        ) from e


def _floats(x: Any, name: str, ndim: int) -> np.ndarray:
    a = _array(x, name)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if a.dtype != np.float32:
        if a.dtype.kind not in "fiub":
            raise ValueError(f"{name} must hold numbers, got dtype {a.dtype}")
        a = a.astype(np.float32)  # copy (e.g. float64 → float32, rounding to nearest)
    return np.ascontiguousarray(a)  # copy only if not C-contiguous


def _ids(x: Any, name: str, ndim: int) -> np.ndarray:
    a = _array(x, name)
    if ndim == 1 and a.ndim == 2:
        a = a.reshape(-1)  # [n_tables, B] lengths, table-major like a KeyedJaggedTensor
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if a.dtype != np.int64:
        if a.dtype.kind not in "iu" and not (a.dtype.kind == "b" and a.size == 0):
            raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
        if a.dtype == np.uint64 and a.size and int(a.max()) > _INT64_MAX:
            raise ValueError(f"{name} holds {int(a.max())}, beyond int64")
        a = a.astype(np.int64)  # copy (e.g. int32 → int64)
    return np.ascontiguousarray(a)


class Inputs(NamedTuple):
    """The arrays handed to the native model: float32 / int64, C-contiguous."""

    dense: np.ndarray
    sparse: Optional[np.ndarray]
    lengths: Optional[np.ndarray]
    values: Optional[np.ndarray]
    offsets: Optional[np.ndarray]
    weights: Optional[np.ndarray]


def _is_kjt(x: Any) -> bool:
    return callable(getattr(x, "values", None)) and callable(getattr(x, "offsets", None))


def prepare_inputs(
    dense: Any,
    sparse: Any = None,
    *,
    lengths: Any = None,
    values: Any = None,
    indices: Any = None,
    offsets: Any = None,
    weights: Any = None,
) -> Inputs:
    """Converts the arguments of :meth:`Model.predict` to the arrays the native model borrows.

    Arrays that already are float32 (dense, weights) / int64 (ids, lengths, offsets) and
    C-contiguous are passed through as they are (``np.shares_memory`` holds); anything else is
    converted once here. A TorchRec ``KeyedJaggedTensor`` (anything with ``values()``,
    ``offsets()`` and ``weights_or_none()``) given as ``sparse`` is read as jagged input.
    """
    if sparse is not None and _is_kjt(sparse):
        if any(v is not None for v in (lengths, values, indices, offsets, weights)):
            raise ValueError("give a KeyedJaggedTensor as sparse, or jagged arrays, not both")
        kjt = sparse
        values, offsets = kjt.values(), kjt.offsets()
        weights = kjt.weights_or_none() if callable(getattr(kjt, "weights_or_none", None)) else None
        sparse = None
    if values is not None and indices is not None:
        raise ValueError("values= and indices= are the same argument (KJT / embedding_bag names): give one")
    if indices is not None:
        values = indices
    return Inputs(
        dense=_floats(dense, "dense", 2),
        sparse=None if sparse is None else _ids(sparse, "sparse", 2),
        lengths=None if lengths is None else _ids(lengths, "lengths", 1),
        values=None if values is None else _ids(values, "values", 1),
        offsets=None if offsets is None else _ids(offsets, "offsets", 1),
        weights=None if weights is None else _floats(weights, "weights", 1),
    )


def _native_property(name: str, doc: str) -> property:
    """A read-only property forwarding to the native model's attribute ``name``."""
    return property(lambda self: getattr(self._native, name), doc=doc)


def _json_property(name: str, doc: str) -> property:
    """A read-only property: the native model's JSON attribute ``name`` parsed once, as a dict."""

    def get(self: "Model") -> dict:
        if name not in self._json:
            self._json[name] = json.loads(getattr(self._native, name))
        return self._json[name]

    return property(get, doc=doc)


class Model:
    """A quantrec artifact loaded for scoring.

    The tables stay memory-mapped from the file unless ``tables_in_memory`` is set, so processes
    (e.g. Ray actors) that load the same file on one node share its pages. Every method may be
    called from several threads at once: scoring releases the GIL and runs on the model's thread
    pool (``threads``) or, by default, on the process-wide pool (one thread per core, or
    ``RAYON_NUM_THREADS``).
    """

    __slots__ = ("_native", "_json")

    def __init__(self, native: _quantrec.Model) -> None:
        """Wraps a native model; use :meth:`Model.load`."""
        self._native = native
        self._json: dict = {}

    @classmethod
    def load(cls, path: PathLike, tables_in_memory: bool = False, threads: Optional[int] = None) -> "Model":
        """Loads the artifact at ``path``.

        ``tables_in_memory`` copies the tables into RAM (huge pages for tables of 2 MiB and more)
        instead of paging them in from the mapping. ``threads`` gives the model its own pool of
        that many compute threads (``None``: the process-wide pool). Raises ``OSError`` when the
        file cannot be read and ``ValueError`` when it is not a valid artifact.
        """
        return cls(_quantrec.Model.load(os.fspath(path), tables_in_memory, threads))

    def predict(
        self,
        dense: Any,
        sparse: Any = None,
        *,
        lengths: Any = None,
        values: Any = None,
        indices: Any = None,
        offsets: Any = None,
        weights: Any = None,
        logits: bool = False,
        allow_nonfinite: bool = False,
    ) -> np.ndarray:
        """Scores a batch: click probabilities (or ``logits=True``: logits), float32 ``[B]``.

        - ``dense``: ``[B, n_dense]``, already transformed (e.g. ``log1p``).
        - Sparse ids, one of:
          ``sparse`` ``[B, n_tables]`` (one id per table, Criteo-style); or jagged like TorchRec's
          KeyedJaggedTensor: ``values`` (alias ``indices``) with all ids table-major (every sample
          of table 0, then table 1, ...) and either ``lengths`` (``n_tables * B``, or
          ``[n_tables, B]``) or ``offsets`` (``n_tables * B + 1``, from 0 to ``len(values)``),
          optional per-id ``weights``; or a ``KeyedJaggedTensor`` itself as ``sparse``.

        Zero-copy: float32 / int64 C-contiguous inputs (numpy arrays, CPU torch tensors,
        buffer-protocol objects) are borrowed as they are, by Python and by the native side, for
        the whole forward pass, which runs with the GIL released; other dtypes or layouts are
        converted once (see :func:`prepare_inputs`). Dense and jagged ``values`` / ``offsets`` /
        ``weights`` are never copied (each table reads a window of the KJT offsets); ``lengths``
        cost one conversion to offsets (``n_tables * B + 1`` integers), and the one-hot
        ``sparse`` layout one transpose of its ``B * n_tables`` ids into a reused buffer (the
        kernels read each table's ids contiguously). :attr:`input_bytes_copied` counts those
        bytes. Do not modify the input arrays from another thread while ``predict`` runs on them
        (a data race no borrow flag can prevent once the GIL is released). Outputs equal
        ``quantrec predict``'s bit for bit.

        Raises ``ValueError`` for inputs the model refuses (shapes, ids out of range, NaN or
        infinite dense values unless ``allow_nonfinite``), with the library's message.
        """
        x = prepare_inputs(
            dense, sparse, lengths=lengths, values=values, indices=indices, offsets=offsets, weights=weights
        )
        return self._native.predict(
            x.dense, x.sparse, x.lengths, x.values, x.offsets, x.weights, logits, allow_nonfinite
        )

    config = _json_property("config_json", "The architecture (dense features, MLPs, tables, interaction) as a dict.")
    plan = _json_property("plan_json", "The precision plan (per layer, per table) as a dict.")
    plan_summary = _native_property("plan_summary", "The plan in one short line.")
    bytes = _native_property("bytes", "Bytes of the parameters as stored (dense layers plus tables).")
    dense_bytes = _native_property("dense_bytes", "Bytes of the dense layers.")
    table_bytes = _native_property("table_bytes", "Bytes of the tables.")
    file_bytes = _native_property("file_bytes", "Size of the artifact file.")
    n_dense = _native_property("n_dense", "Dense features per sample.")
    n_tables = _native_property("n_tables", "Tables (sparse features).")
    table_rows = _native_property("table_rows", "Rows of each table.")
    table_names = _native_property("table_names", "Names of the tables, in input order.")
    threads = _native_property("threads", "Threads of the model's own pool, or None for the process-wide pool.")
    tables_in_memory = _native_property(
        "tables_in_memory", "Whether the tables were copied into RAM (else paged in from the file mapping)."
    )

    input_bytes_copied = _native_property(
        "input_bytes_copied",
        "Bytes of input the native side converted so far, over every call (0 for dense + jagged values with offsets).",
    )

    meta = _json_property("meta_json", "Everything the artifact records: config, plan, quantization, provenance, versions.")

    @property
    def path(self) -> str:
        """The artifact's path."""
        return os.fspath(self._native.path)

    def __repr__(self) -> str:
        return (
            f"quantrec.Model(path={self.path!r}, n_dense={self.n_dense}, n_tables={self.n_tables}, "
            f"bytes={self.bytes}, plan={self.plan_summary!r})"
        )
