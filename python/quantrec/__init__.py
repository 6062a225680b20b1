"""quantrec: low-precision inference for DLRM-family recommendation models.

Load an artifact written by ``quantrec import`` / ``quantrec quantize`` (or by
:func:`import_state_dict` / :func:`quantize`) and score numpy arrays or torch tensors::

    import quantrec
    model = quantrec.Model.load("model.safetensors")
    p = model.predict(dense, sparse)          # dense [B, n_dense] f32, sparse [B, n_tables] ids

Scoring runs in Rust with the GIL released, so Python threads score in parallel.
:mod:`quantrec.ray` scores Ray Data datasets with one memory-mapped model per actor.
"""

from ._model import Model, prepare_inputs
from ._quantrec import __version__
from ._workflow import EvalReport, QuantizeReport, evaluate, import_state_dict, quantize

__all__ = [
    "EvalReport",
    "Model",
    "QuantizeReport",
    "__version__",
    "evaluate",
    "import_state_dict",
    "prepare_inputs",
    "quantize",
]
