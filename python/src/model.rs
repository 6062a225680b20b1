//! `quantrec._quantrec.Model`: an artifact loaded once (tables memory-mapped unless asked
//! otherwise), scored from any Python thread with the GIL released.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use quantrec_model::artifact::Artifact;
use quantrec_model::score::Predictions;
use quantrec_model::{Model, Scratch};
use quantrec_quant::plans::summary;

use crate::errors::{json_err, model_err};
use crate::inputs::{Bags, InputBuffers, Shape, Sparse, build_view};

/// A quantrec artifact ready to score batches.
#[pyclass(name = "Model", module = "quantrec._quantrec", frozen)]
pub struct PyModel {
    model: Model,
    path: PathBuf,
    file_bytes: usize,
    meta_json: String,
    tables_in_memory: bool,
    /// Compute threads of this model's own pool; `None` runs on the process-wide pool.
    pool: Option<rayon::ThreadPool>,
    /// Reusable scratch and input buffers, one pair taken per concurrent call.
    scratches: Mutex<Vec<(Scratch, InputBuffers)>>,
    /// Bytes of input converted or copied on the native side, over every call.
    copied: AtomicU64,
}

/// A C-contiguous array's values, or a `ValueError` naming it.
fn contiguous<'a, T: numpy::Element>(
    name: &str,
    a: &'a numpy::PyReadonlyArray<'_, T, impl numpy::ndarray::Dimension>,
) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| PyValueError::new_err(format!("{name} must be C-contiguous")))
}

impl PyModel {
    fn shape(&self) -> Shape {
        let c = self.model.config();
        Shape {
            n_dense: c.dense_features,
            n_tables: c.tables.len(),
        }
    }

    /// Scores `sparse` with `dense` (GIL released by the caller): probabilities or logits.
    fn score(
        &self,
        rows: usize,
        dense: &[f32],
        sparse: Sparse<'_>,
        logits: bool,
        allow_nonfinite: bool,
    ) -> PyResult<Vec<f32>> {
        let (mut scratch, mut buffers) = self
            .scratches
            .lock()
            .map_err(|_| PyRuntimeError::new_err("quantrec: scratch pool poisoned"))?
            .pop()
            .unwrap_or_default();
        let mut preds = Predictions::default();
        preds.allow_nonfinite = allow_nonfinite;
        let result = build_view(self.shape(), rows, dense, sparse, &mut buffers).map(|built| {
            self.copied
                .fetch_add(built.copied as u64, Ordering::Relaxed);
            let mut run = || preds.score_view(&self.model, &built.view, &mut scratch);
            match &self.pool {
                Some(pool) => pool.install(run),
                None => run(),
            }
        });
        if let Ok(mut pool) = self.scratches.lock() {
            pool.push((scratch, buffers));
        }
        result?.map_err(model_err)?;
        Ok(if logits {
            preds.logits
        } else {
            preds.probabilities
        })
    }
}

#[pymethods]
impl PyModel {
    /// Loads an artifact (written by `quantrec import` / `quantrec quantize`).
    #[staticmethod]
    #[pyo3(signature = (path, tables_in_memory=false, threads=None))]
    fn load(
        py: Python<'_>,
        path: PathBuf,
        tables_in_memory: bool,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        if threads == Some(0) {
            return Err(PyValueError::new_err(
                "threads must be at least 1 (None: the process-wide pool)",
            ));
        }
        py.detach(|| {
            let mut artifact = Artifact::load(&path).map_err(model_err)?;
            if tables_in_memory {
                artifact
                    .model
                    .load_tables_into_memory()
                    .map_err(model_err)?;
            }
            let pool = threads
                .map(|n| rayon::ThreadPoolBuilder::new().num_threads(n).build())
                .transpose()
                .map_err(|e| PyRuntimeError::new_err(format!("quantrec: thread pool: {e}")))?;
            Ok(PyModel {
                meta_json: serde_json::to_string(&artifact.meta).map_err(json_err)?,
                model: artifact.model,
                path,
                file_bytes: artifact.file_bytes,
                tables_in_memory,
                pool,
                scratches: Mutex::new(Vec::new()),
                copied: AtomicU64::new(0),
            })
        })
    }

    /// Scores a batch; see `quantrec.Model.predict` for the forms of the inputs.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (dense, sparse=None, lengths=None, values=None, offsets=None, weights=None, logits=false, allow_nonfinite=false))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        dense: PyReadonlyArray2<'py, f32>,
        sparse: Option<PyReadonlyArray2<'py, i64>>,
        lengths: Option<PyReadonlyArray1<'py, i64>>,
        values: Option<PyReadonlyArray1<'py, i64>>,
        offsets: Option<PyReadonlyArray1<'py, i64>>,
        weights: Option<PyReadonlyArray1<'py, f32>>,
        logits: bool,
        allow_nonfinite: bool,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let rows = dense.shape()[0];
        let dense_v = contiguous("dense", &dense)?;
        let sparse_ids = sparse
            .as_ref()
            .map(|s| contiguous("sparse", s))
            .transpose()?;
        let lengths_v = lengths
            .as_ref()
            .map(|a| contiguous("lengths", a))
            .transpose()?;
        let values_v = values
            .as_ref()
            .map(|a| contiguous("values", a))
            .transpose()?;
        let offsets_v = offsets
            .as_ref()
            .map(|a| contiguous("offsets", a))
            .transpose()?;
        let weights_v = weights
            .as_ref()
            .map(|a| contiguous("weights", a))
            .transpose()?;
        if let Some(s) = &sparse
            && s.shape()[0] != rows
        {
            return Err(PyValueError::new_err(format!(
                "sparse has {} rows but dense has {rows}",
                s.shape()[0]
            )));
        }
        let input = match (sparse_ids, values_v, lengths_v, offsets_v) {
            (None, None, None, None) if weights_v.is_none() => Sparse::Absent,
            (Some(ids), None, None, None) if weights_v.is_none() => Sparse::OneHot(ids),
            (None, Some(values), Some(l), None) => Sparse::Jagged {
                values,
                bags: Bags::Lengths(l),
                weights: weights_v,
            },
            (None, Some(values), None, Some(o)) => Sparse::Jagged {
                values,
                bags: Bags::Offsets(o),
                weights: weights_v,
            },
            _ => {
                return Err(PyValueError::new_err(
                    "give sparse=[B, n_tables] ids, or values= with exactly one of lengths= / offsets= \
                     (weights= only with values=)",
                ));
            }
        };
        // The slices borrow numpy memory while the GIL is released. Sound because:
        // - the arrays outlive the computation: `dense`, `sparse`, ... are bound references owned
        //   by this frame (each keeps its array object alive) and are dropped only after `detach`
        //   returns, and the slices cannot escape the closure (the result is an owned `Vec`);
        // - each `PyReadonlyArray` holds rust-numpy's shared borrow of its array until then, so
        //   no Rust code (ours or another rust-numpy extension) gets a mutable borrow of it;
        // - `&[f32]` / `&[i64]` are `Send` (plain `Sync` values), which `detach` requires of what
        //   the closure captures; no wrapper type is needed.
        // What no borrow flag can exclude is Python code in another thread writing into the same
        // memory during the call (rust-numpy's flags bind Rust borrows only, and numpy's own
        // GIL-free loops have the same contract): that is the caller's data race, documented on
        // `Model.predict` ("do not modify the inputs while predict runs on them"). Its effect is
        // not bounded to wrong scores: an id rewritten between the kernels' range check and
        // their row read could make them read outside a table.
        let out = py.detach(|| self.score(rows, dense_v, input, logits, allow_nonfinite))?;
        Ok(out.into_pyarray(py))
    }

    /// Bytes of input the native side has converted or copied so far, over every call: 0 for
    /// C-contiguous float32 dense with jagged int64 `values` + `offsets` (all borrowed); the
    /// one-hot transpose (`B * n_tables` ids and `B + 1` offsets) or the offsets computed from
    /// `lengths` otherwise.
    #[getter]
    fn input_bytes_copied(&self) -> u64 {
        self.copied.load(Ordering::Relaxed)
    }

    /// The artifact's metadata (config, plan, provenance, ...) as JSON.
    #[getter]
    fn meta_json(&self) -> &str {
        &self.meta_json
    }

    /// The architecture as JSON.
    #[getter]
    fn config_json(&self) -> PyResult<String> {
        serde_json::to_string(self.model.config()).map_err(json_err)
    }

    /// The precision plan as JSON.
    #[getter]
    fn plan_json(&self) -> PyResult<String> {
        serde_json::to_string(self.model.plan()).map_err(json_err)
    }

    /// One line per layer group: the plan in short form.
    #[getter]
    fn plan_summary(&self) -> String {
        summary(self.model.plan())
    }

    /// Bytes of the parameters as stored (dense layers plus tables).
    #[getter]
    fn bytes(&self) -> usize {
        self.model.dense_bytes() + self.model.table_bytes()
    }

    /// Bytes of the dense layers.
    #[getter]
    fn dense_bytes(&self) -> usize {
        self.model.dense_bytes()
    }

    /// Bytes of the tables.
    #[getter]
    fn table_bytes(&self) -> usize {
        self.model.table_bytes()
    }

    /// Size of the artifact file.
    #[getter]
    fn file_bytes(&self) -> usize {
        self.file_bytes
    }

    /// Dense features per sample.
    #[getter]
    fn n_dense(&self) -> usize {
        self.shape().n_dense
    }

    /// Tables (sparse features).
    #[getter]
    fn n_tables(&self) -> usize {
        self.shape().n_tables
    }

    /// Rows of each table.
    #[getter]
    fn table_rows(&self) -> Vec<usize> {
        self.model.config().tables.iter().map(|t| t.rows).collect()
    }

    /// Names of the tables (as in the state dict).
    #[getter]
    fn table_names(&self) -> Vec<String> {
        self.model.table_names().to_vec()
    }

    /// The artifact's path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Whether the tables were copied into memory (else they are paged in from the mapping).
    #[getter]
    fn tables_in_memory(&self) -> bool {
        self.tables_in_memory
    }

    /// Compute threads of the model's own pool, or `None` for the process-wide pool.
    #[getter]
    fn threads(&self) -> Option<usize> {
        self.pool
            .as_ref()
            .map(rayon::ThreadPool::current_num_threads)
    }

    fn __repr__(&self) -> String {
        let s = self.shape();
        format!(
            "_quantrec.Model(path={:?}, n_dense={}, n_tables={}, bytes={}, plan={:?})",
            self.path.display().to_string(),
            s.n_dense,
            s.n_tables,
            self.bytes(),
            self.plan_summary()
        )
    }
}
