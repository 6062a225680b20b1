"""Type stubs of the native module ``quantrec._quantrec`` (built from python/src by maturin)."""

from typing import Optional, Tuple

import numpy as np
import numpy.typing as npt

__version__: str

class Model:
    """A quantrec artifact ready to score batches (the native half of ``quantrec.Model``)."""

    @staticmethod
    def load(path: str, tables_in_memory: bool = False, threads: Optional[int] = None) -> "Model": ...
    def predict(
        self,
        dense: npt.NDArray[np.float32],
        sparse: Optional[npt.NDArray[np.int64]] = None,
        lengths: Optional[npt.NDArray[np.int64]] = None,
        values: Optional[npt.NDArray[np.int64]] = None,
        offsets: Optional[npt.NDArray[np.int64]] = None,
        weights: Optional[npt.NDArray[np.float32]] = None,
        logits: bool = False,
        allow_nonfinite: bool = False,
    ) -> npt.NDArray[np.float32]: ...
    @property
    def meta_json(self) -> str: ...
    @property
    def config_json(self) -> str: ...
    @property
    def plan_json(self) -> str: ...
    @property
    def plan_summary(self) -> str: ...
    @property
    def bytes(self) -> int: ...
    @property
    def dense_bytes(self) -> int: ...
    @property
    def table_bytes(self) -> int: ...
    @property
    def file_bytes(self) -> int: ...
    @property
    def n_dense(self) -> int: ...
    @property
    def n_tables(self) -> int: ...
    @property
    def table_rows(self) -> list[int]: ...
    @property
    def table_names(self) -> list[str]: ...
    @property
    def path(self) -> str: ...
    @property
    def tables_in_memory(self) -> bool: ...
    @property
    def threads(self) -> Optional[int]: ...
    @property
    def input_bytes_copied(self) -> int: ...

def import_state_dict(
    state_dict: str, output: str, overrides: Optional[str] = None, plan: Optional[str] = None
) -> None: ...
def quantize(
    model: str,
    calib: str,
    eval: str,
    output: str,
    plan: str,
    budget_ne: float,
    budget_auc: Optional[float],
    calib_rows: int,
    eval_rows: int,
    schema: Optional[str],
    objective: str,
    calib_method: str,
    table_rounding: str,
    latency_batch: int,
    sensitivity_rows: int,
    report_dir: Optional[str],
) -> str: ...
def evaluate(
    model: str,
    data: str,
    baseline: Optional[str] = None,
    rows: Optional[int] = None,
    schema: Optional[str] = None,
    batch_size: int = 4096,
) -> Tuple[str, str]: ...
