"""Import, quantization and evaluation: the library workflows of ``quantrec import``,
``quantrec quantize`` and ``quantrec eval``, with report objects."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from . import _quantrec
from ._model import Model, PathLike

JsonSpec = Union[dict, str, "os.PathLike[str]", None]


def _json_text(spec: JsonSpec, what: str) -> Optional[str]:
    """A dict as JSON text, or the contents of a JSON file."""
    if spec is None:
        return None
    if isinstance(spec, dict):
        return json.dumps(spec)
    if isinstance(spec, (str, os.PathLike)):
        with open(spec, encoding="utf-8") as f:  # OSError when unreadable
            return f.read()
    raise ValueError(f"{what} must be a dict or the path of a JSON file, got {type(spec).__name__}")


def import_state_dict(
    state_dict: PathLike,
    output: PathLike,
    *,
    overrides: JsonSpec = None,
    plan: JsonSpec = None,
    tables_in_memory: bool = False,
) -> Model:
    """Imports a PyTorch / TorchRec DLRM state dict (``.safetensors`` with facebookresearch/dlrm
    or TorchRec module names) into the artifact ``output`` and returns it loaded.

    ``overrides`` (dict or JSON file) says what the weights cannot tell, e.g.
    ``{"interaction": {"kind": "cat"}, "pooling": "mean"}``; ``plan`` (dict or JSON file) stores
    the model in that precision plan (default all f32). Same as ``quantrec import``.
    """
    _quantrec.import_state_dict(
        os.fspath(state_dict), os.fspath(output), _json_text(overrides, "overrides"), _json_text(plan, "plan")
    )
    return Model.load(output, tables_in_memory=tables_in_memory)


@dataclass(frozen=True)
class QuantizeReport:
    """What :func:`quantize` did: the plan chosen, bytes and accuracy against the f32 model."""

    output: str
    """The artifact written."""
    plan: dict
    """The precision plan."""
    plan_summary: str
    """The plan in one short line."""
    bytes_f32: int
    """Bytes of the f32 parameters."""
    bytes_quantized: int
    """Bytes of the quantized parameters."""
    ne_f32: float
    """Normalized entropy of the f32 model on the evaluation rows."""
    ne_quantized: float
    """Normalized entropy of the quantized model."""
    delta_ne_pct: float
    """Relative NE change in percent (positive is worse)."""
    auc_f32: float
    """AUC of the f32 model."""
    auc_quantized: float
    """AUC of the quantized model."""
    delta_auc: float
    """AUC change (quantized − f32)."""
    calibration: float
    """Mean prediction / CTR of the quantized model."""
    budget: str
    """The accuracy gate, in words."""
    chosen: Optional[str] = None
    """Name of the plan the search chose (``None`` for a preset or given plan)."""
    search_seconds: Optional[float] = None
    """Time of the search."""
    model_evaluations: Optional[int] = None
    """Model runs of the search."""
    raw: dict = field(default_factory=dict, repr=False, compare=False)
    """The report as the native layer returned it."""

    @property
    def compression(self) -> float:
        """f32 bytes / quantized bytes."""
        return self.bytes_f32 / self.bytes_quantized

    def __repr__(self) -> str:
        return (
            f"QuantizeReport(output={self.output!r}, plan={self.plan_summary!r}, "
            f"bytes {self.bytes_f32} -> {self.bytes_quantized} ({self.compression:.2f}x), "
            f"ΔNE {self.delta_ne_pct:+.4f}% ({self.budget}), ΔAUC {self.delta_auc:+.5f})"
        )


def quantize(
    model: PathLike,
    calib: PathLike,
    eval: PathLike,
    output: PathLike,
    *,
    plan: Union[str, PathLike] = "auto",
    budget_ne: float = 0.02,
    budget_auc: Optional[float] = None,
    calib_rows: int = 4096,
    eval_rows: int = 50_000,
    schema: Optional[PathLike] = None,
    objective: str = "bytes",
    calib_method: str = "l2",
    table_rounding: str = "curvature",
    latency_batch: int = 256,
    sensitivity_rows: int = 16_384,
    report_dir: Optional[PathLike] = None,
) -> QuantizeReport:
    """Quantizes ``model`` (artifact or state dict) under an accuracy budget and writes ``output``.

    Same as ``quantrec quantize`` with the same defaults: ``plan`` is ``"auto"`` (search), a
    preset (``fp16``, ``int8-dynamic``, ``int4-tables``, ``aggressive``) or a plan JSON file; the
    gate is ``budget_ne`` (ΔNE in percent) or, when given, ``budget_auc`` (AUC drop); ``calib``
    and ``eval`` are data files (Criteo TSV, schema-described text with ``schema``, gzip, or batch
    files). Nothing is written when no plan meets the budget (``ValueError``).
    """
    for name, v in (("calib_rows", calib_rows), ("eval_rows", eval_rows), ("latency_batch", latency_batch)):
        if v <= 0:
            raise ValueError(f"{name} must be positive, got {v}")
    raw = json.loads(
        _quantrec.quantize(
            os.fspath(model),
            os.fspath(calib),
            os.fspath(eval),
            os.fspath(output),
            os.fspath(plan),
            float(budget_ne),
            None if budget_auc is None else float(budget_auc),
            calib_rows,
            eval_rows,
            None if schema is None else os.fspath(schema),
            objective,
            calib_method,
            table_rounding,
            latency_batch,
            sensitivity_rows,
            None if report_dir is None else os.fspath(report_dir),
        )
    )
    names = QuantizeReport.__dataclass_fields__.keys() - {"raw"}
    return QuantizeReport(**{k: raw[k] for k in names if k in raw}, raw=raw)


@dataclass(frozen=True)
class EvalReport:
    """What :func:`evaluate` measured (NE, log loss, AUC, calibration; vs a baseline if given)."""

    data: dict
    """The report as ``quantrec eval --json`` prints it."""
    text: str = field(repr=False)
    """The table ``quantrec eval`` prints."""

    @property
    def rows(self) -> int:
        """Rows evaluated."""
        return int(self.data["metrics"]["count"])

    @property
    def metrics(self) -> dict:
        """The model's metrics (``ne``, ``log_loss``, ``auc``, ``calibration``, ``ctr``, ...)."""
        return self.data["metrics"]

    @property
    def baseline(self) -> Optional[dict]:
        """The baseline's metrics and the deltas, when a baseline was given."""
        return self.data.get("baseline")

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        m = self.metrics
        parts = ", ".join(f"{k}={m[k]:.6g}" for k in ("ne", "log_loss", "auc", "calibration") if m.get(k) is not None)
        return f"EvalReport(rows={self.rows}, {parts}{', with baseline' if self.baseline else ''})"


def evaluate(
    model: PathLike,
    data: PathLike,
    *,
    baseline: Optional[PathLike] = None,
    rows: Optional[int] = None,
    schema: Optional[PathLike] = None,
    batch_size: int = 4096,
) -> EvalReport:
    """Streams labelled ``data`` through ``model`` (and ``baseline``, e.g. the f32 model) and
    reports NE, log loss, AUC and calibration. Same as ``quantrec eval``."""
    if rows is not None and rows < 0:
        raise ValueError(f"rows must be non-negative, got {rows}")
    js, text = _quantrec.evaluate(
        os.fspath(model),
        os.fspath(data),
        None if baseline is None else os.fspath(baseline),
        rows,
        None if schema is None else os.fspath(schema),
        batch_size,
    )
    return EvalReport(data=json.loads(js), text=text)
