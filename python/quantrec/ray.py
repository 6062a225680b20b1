"""Batch scoring on Ray Data.

:class:`Predictor` is a callable class for ``Dataset.map_batches``: each actor loads the artifact
once (memory-mapped, so actors on one node share its pages) and maps a numpy batch
``{"dense": [B, n_dense], "sparse": [B, n_tables], ...}`` (or raw Criteo-style columns
``I1..``, ``C1..``) to the same batch plus ``"probability"``::

    ds = ds.map_batches(Predictor, fn_constructor_args=(path,), batch_format="numpy",
                        batch_size=4096, compute=ray.data.ActorPoolStrategy(size=2), num_cpus=1)

:func:`score_parquet` reads Criteo-style Parquet or TSV files with Ray Data, scores them and
writes Parquet. Ray is imported only by :func:`score_parquet`; the rest needs only numpy.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence

import numpy as np

from . import criteo
from ._model import Model, PathLike


def _matrix(x: Any, name: str) -> np.ndarray:
    """A tensor column as one 2-D array (Ray hands ragged or object columns as arrays of rows)."""
    a = np.asarray(x)
    if a.dtype == object:
        try:
            a = np.stack([np.asarray(r) for r in a]) if len(a) else a.reshape(0, 0)
        except ValueError as e:
            raise ValueError(f"column {name!r} holds rows of different lengths: {e}") from e
    return a


class Predictor:
    """Scores Ray Data batches with one quantrec model per actor.

    By default the batch holds ``dense`` ``[B, n_dense]`` and ``sparse`` ``[B, n_tables]``
    columns (names set by ``dense_key`` / ``sparse_key``). With ``raw_columns=True`` it holds
    Criteo-style raw columns instead (``dense_columns``, default ``I1..I{n_dense}``, and
    ``sparse_columns``, default ``C1..C{n_tables}``), transformed as quantrec's data crate does
    (:mod:`quantrec.criteo`). The output is the input batch plus ``output_key`` (probabilities,
    or logits with ``logits=True``); ``drop_columns`` are left out of it.

    ``threads`` is the compute threads of this actor (match the actor's ``num_cpus``).
    """

    def __init__(
        self,
        model_path: PathLike,
        *,
        threads: int = 1,
        tables_in_memory: bool = False,
        dense_key: str = "dense",
        sparse_key: str = "sparse",
        output_key: str = "probability",
        logits: bool = False,
        raw_columns: bool = False,
        dense_columns: Optional[Sequence[str]] = None,
        sparse_columns: Optional[Sequence[str]] = None,
        drop_columns: Sequence[str] = (),
    ) -> None:
        """Loads the model (once per actor)."""
        self.model = Model.load(model_path, tables_in_memory=tables_in_memory, threads=threads)
        self.dense_key, self.sparse_key, self.output_key = dense_key, sparse_key, output_key
        self.logits = logits
        self.raw_columns = raw_columns
        d, s = criteo.default_columns(self.model.n_dense, self.model.n_tables)
        self.dense_columns = list(dense_columns) if dense_columns is not None else d
        self.sparse_columns = list(sparse_columns) if sparse_columns is not None else s
        self.drop_columns = set(drop_columns)

    def features(self, batch: Dict[str, np.ndarray]) -> tuple:
        """``(dense, sparse)`` model inputs of a batch."""
        if self.raw_columns:
            return criteo.features(batch, self.model.table_rows, self.dense_columns, self.sparse_columns)
        for k in (self.dense_key, self.sparse_key):
            if k not in batch and (k == self.dense_key or self.model.n_tables):
                raise ValueError(f"column {k!r} is not in the batch (it has {sorted(batch)})")
        sparse = batch.get(self.sparse_key)
        return _matrix(batch[self.dense_key], self.dense_key), None if sparse is None else _matrix(
            sparse, self.sparse_key
        )

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """The batch plus the scores."""
        dense, sparse = self.features(batch)
        out = {k: v for k, v in batch.items() if k not in self.drop_columns}
        out[self.output_key] = self.model.predict(dense, sparse, logits=self.logits)
        return out

    def __repr__(self) -> str:
        return f"quantrec.ray.Predictor({self.model!r}, output_key={self.output_key!r}, raw_columns={self.raw_columns})"


def _read(input_glob: str, fmt: str, columns: Sequence[str], label: Optional[str], n_cols: Optional[int]):
    import ray.data

    if fmt == "parquet":
        return ray.data.read_parquet(input_glob)
    if fmt != "tsv":
        raise ValueError(f"format {fmt!r}: expected 'parquet' or 'tsv'")
    import pyarrow as pa
    from pyarrow import csv

    names = list(columns)
    if n_cols is not None:
        if n_cols < len(names):
            raise ValueError(f"tsv_columns={n_cols} is fewer than the {len(names)} columns used")
        names += [f"_unused{i}" for i in range(n_cols - len(names))]
    types: Dict[str, Any] = {c: pa.string() for c in names if c.startswith("C") or c.startswith("_unused")}
    types.update({c: pa.float64() for c in names if c.startswith("I")})
    if label is not None:
        types[label] = pa.float32()
    return ray.data.read_csv(
        input_glob,
        parse_options=csv.ParseOptions(delimiter="\t", quote_char=False),
        read_options=csv.ReadOptions(column_names=names),
        convert_options=csv.ConvertOptions(column_types=types),
        file_extensions=None,
    )


def score_parquet(
    model: PathLike,
    input_glob: str,
    output_dir: PathLike,
    *,
    format: Optional[str] = None,
    label_column: Optional[str] = "label",
    dense_columns: Optional[Sequence[str]] = None,
    sparse_columns: Optional[Sequence[str]] = None,
    tsv_columns: Optional[int] = 40,
    keep_columns: Sequence[str] = ("label",),
    batch_size: int = 4096,
    concurrency: Optional[int] = None,
    threads_per_actor: int = 1,
    preserve_order: bool = True,
) -> int:
    """Scores Criteo-style files with Ray Data and writes Parquet files of ``probability`` (plus
    ``keep_columns`` that exist) into ``output_dir``. Returns the rows written.

    ``input_glob`` is a file, directory or glob Ray Data reads; ``format`` is ``"parquet"`` or
    ``"tsv"`` (default: by the extension; ``.txt``/``.tsv`` are TSV). TSV files have Criteo's
    column order (``label``, ``I1..I13``, ``C1..C26``: ``tsv_columns`` in all) and no header;
    the model uses ``dense_columns`` / ``sparse_columns`` (default the first ``n_dense`` I and
    ``n_tables`` C columns). Runs ``concurrency`` actors of ``threads_per_actor`` threads on the
    current Ray cluster (``ray.init()`` first to choose it; default ``concurrency``: as many
    actors as fit in its CPUs with one CPU left for reading and writing); with
    ``preserve_order`` the output rows keep the input order.
    """
    import ray
    import ray.data

    if concurrency is None:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        concurrency = max(1, cpus // threads_per_actor - 1)
    if batch_size <= 0 or concurrency <= 0 or threads_per_actor <= 0:
        raise ValueError("batch_size, concurrency and threads_per_actor must be positive")
    probe = Model.load(model)
    d, s = criteo.default_columns(probe.n_dense, probe.n_tables)
    dense_columns = list(dense_columns) if dense_columns is not None else d
    sparse_columns = list(sparse_columns) if sparse_columns is not None else s
    del probe
    if format is None:
        ext = os.path.splitext(input_glob.rstrip("/*"))[1].lower()
        format = "tsv" if ext in (".tsv", ".txt") else "parquet"
    ctx = ray.data.DataContext.get_current()
    saved_order = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = preserve_order
    try:
        return _score(ctx, model, input_glob, output_dir, format, label_column, dense_columns, sparse_columns,
                      tsv_columns, keep_columns, batch_size, concurrency, threads_per_actor)
    finally:
        ctx.execution_options.preserve_order = saved_order


def _score(ctx, model, input_glob, output_dir, format, label_column, dense_columns, sparse_columns,
           tsv_columns, keep_columns, batch_size, concurrency, threads_per_actor) -> int:
    """The body of :func:`score_parquet` (its arguments checked, the context set)."""
    import ray.data

    if format == "tsv":
        criteo_names = [label_column or "label", *criteo.default_columns(13, 26)[0], *criteo.default_columns(13, 26)[1]]
        input_names = criteo_names[: tsv_columns or len(criteo_names)]
        ds = _read(input_glob, format, input_names, label_column, tsv_columns)
    else:
        ds = _read(input_glob, format, [], label_column, None)
        input_names = list(ds.schema().names)
    keep = [c for c in keep_columns if c in input_names]
    scored = ds.map_batches(
        Predictor,
        fn_constructor_args=(os.fspath(model),),
        fn_constructor_kwargs={
            "threads": threads_per_actor,
            "raw_columns": True,
            "dense_columns": dense_columns,
            "sparse_columns": sparse_columns,
            "drop_columns": [c for c in input_names if c not in keep],
        },
        batch_format="numpy",
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=threads_per_actor,
    )
    out = os.fspath(output_dir)
    scored.write_parquet(out)
    import pyarrow.parquet as pq

    return sum(
        pq.ParquetFile(os.path.join(out, f)).metadata.num_rows for f in os.listdir(out) if f.endswith(".parquet")
    )
