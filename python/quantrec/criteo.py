"""Criteo-style raw columns → model inputs, exactly as quantrec's data crate reads them.

Dense counts become ``ln(1 + max(x, 0))`` (computed in float64, then rounded to float32; missing
is 0); categorical fields are hexadecimal strings taken ``mod`` the table's rows (missing or empty
is id 0), the facebookresearch/dlrm and TorchRec convention. So scores of these features equal
``quantrec predict --data`` on the same file bit for bit.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

_HEX = frozenset("0123456789abcdefABCDEF")


def default_columns(n_dense: int, n_tables: int) -> Tuple[list, list]:
    """Criteo's column names: ``I1..I{n_dense}`` and ``C1..C{n_tables}``."""
    return [f"I{i}" for i in range(1, n_dense + 1)], [f"C{i}" for i in range(1, n_tables + 1)]


def dense_features(columns: Sequence[np.ndarray]) -> np.ndarray:
    """``[B, len(columns)]`` float32: ``log1p(max(x, 0))``, missing (NaN / None) as 0."""
    if not columns:
        raise ValueError("no dense columns")
    out = np.empty((len(columns[0]), len(columns)), dtype=np.float32)
    for j, c in enumerate(columns):
        a = np.asarray(c)
        if a.dtype == object:
            a = np.array([np.nan if v is None or v == "" else float(v) for v in a], dtype=np.float64)
        a = a.astype(np.float64, copy=False)
        if np.isinf(a).any():
            raise ValueError(f"dense column {j} holds an infinite value")
        out[:, j] = np.log1p(np.maximum(np.nan_to_num(a, nan=0.0), 0.0)).astype(np.float32)
    return out


def _hex_id(v: object, rows: int, table: int) -> int:
    if v is None or v == "" or (isinstance(v, float) and np.isnan(v)):
        return 0
    s = v.decode() if isinstance(v, bytes) else str(v)
    if not 1 <= len(s) <= 16 or not _HEX.issuperset(s):
        raise ValueError(f"table {table}: {s!r} is not a hexadecimal id of 1 to 16 digits")
    return int(s, 16) % rows


def sparse_ids(columns: Sequence[np.ndarray], table_rows: Sequence[int]) -> np.ndarray:
    """``[B, len(columns)]`` int64: each hexadecimal field ``mod`` its table's rows."""
    if len(columns) != len(table_rows):
        raise ValueError(f"{len(columns)} categorical columns for {len(table_rows)} tables")
    b = len(columns[0]) if columns else 0
    out = np.empty((b, len(columns)), dtype=np.int64)
    for t, (c, rows) in enumerate(zip(columns, table_rows)):
        out[:, t] = [_hex_id(v, rows, t) for v in c]
    return out


def features(
    batch: Mapping[str, np.ndarray],
    table_rows: Sequence[int],
    dense_columns: Sequence[str],
    sparse_columns: Sequence[str],
) -> Tuple[np.ndarray, np.ndarray]:
    """``(dense, sparse)`` of a batch of raw Criteo-style columns."""
    missing = [c for c in [*dense_columns, *sparse_columns] if c not in batch]
    if missing:
        raise ValueError(f"columns {missing} are not in the batch (it has {sorted(batch)})")
    return (
        dense_features([batch[c] for c in dense_columns]),
        sparse_ids([batch[c] for c in sparse_columns], table_rows),
    )


def labels(batch: Mapping[str, np.ndarray], column: Optional[str]) -> Optional[np.ndarray]:
    """The label column as float32, when present."""
    if column is None or column not in batch:
        return None
    return np.asarray(batch[column], dtype=np.float32)
