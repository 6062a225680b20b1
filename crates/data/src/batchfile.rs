//! Batch files: pre-tokenized samples in a safetensors file, in the layout of the test fixtures.
//!
//! | tensor | dtype | shape |
//! |---|---|---|
//! | `dense` | F32 | `[B, n_dense]` (already transformed) |
//! | `offsets_{t}` | I64 | `[B]`: the start of each bag in `indices_{t}` (PyTorch's form, no trailing end) |
//! | `indices_{t}` | I64 | `[nnz_t]` |
//! | `weights_{t}` (optional) | F32 | `[nnz_t]` per-id weights |
//! | `labels` (optional) | F32 | `[B]`, each 0 or 1 |
//!
//! Tables are `t = 0, 1, ...` without gaps. A file of samples without any feature (`dense` of width
//! 0 and no table) is refused: nothing in it would back the sample count. Other tensors (e.g. the fixtures' `expected`) are
//! ignored. On reading, offsets get the trailing end that [`quantrec_data::SparseFeature`] uses.
//! A batch file is read whole into memory (it is meant for pre-tokenized evaluation and
//! calibration sets, not for unbounded streams).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::batch::{Batch, SparseFeature};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::batch_ops;
use crate::source::{BatchSource, SourceStats};
use crate::{DataError, Result};

fn st_err(path: &Path) -> impl Fn(safetensors::SafeTensorError) -> DataError + '_ {
    move |source| DataError::SafeTensors {
        path: path.to_path_buf(),
        source,
    }
}

fn bad(path: &Path, tensor: &str, expected: impl ToString, found: impl ToString) -> DataError {
    DataError::BatchFile {
        path: path.to_path_buf(),
        tensor: tensor.to_string(),
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

struct Reader<'a> {
    path: &'a Path,
    st: SafeTensors<'a>,
}

impl Reader<'_> {
    fn get(&self, name: &str, dtype: Dtype, rank: usize) -> Result<Option<TensorView<'_>>> {
        let Ok(t) = self.st.tensor(name) else {
            return Ok(None);
        };
        if t.dtype() != dtype || t.shape().len() != rank {
            return Err(bad(
                self.path,
                name,
                format!("{dtype:?} of rank {rank}"),
                format!("{:?} of shape {:?}", t.dtype(), t.shape()),
            ));
        }
        Ok(Some(t))
    }

    fn need(&self, name: &str, dtype: Dtype, rank: usize) -> Result<TensorView<'_>> {
        self.get(name, dtype, rank)?
            .ok_or_else(|| bad(self.path, name, "present", "absent"))
    }
}

fn f32s(t: &TensorView<'_>) -> Vec<f32> {
    t.data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn i64s(t: &TensorView<'_>) -> Vec<i64> {
    t.data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect()
}

/// Reads a whole batch file; ids are checked against `table_rows` unless it is empty.
pub fn read_batch_file(path: &Path, table_rows: &[usize]) -> Result<Batch> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    read_batch_bytes(path, &bytes, table_rows)
}

/// Parses the bytes of a batch file (`path` only names it in errors); ids are checked against
/// `table_rows` unless it is empty.
pub fn read_batch_bytes(path: &Path, bytes: &[u8], table_rows: &[usize]) -> Result<Batch> {
    let st = SafeTensors::deserialize(bytes).map_err(st_err(path))?;
    let r = Reader { path, st };
    let dense_t = r.need("dense", Dtype::F32, 2)?;
    let (size, n_dense) = (dense_t.shape()[0], dense_t.shape()[1]);
    let dense = f32s(&dense_t);
    let labels = match r.get("labels", Dtype::F32, 1)? {
        None => None,
        Some(t) => {
            let l = f32s(&t);
            if l.len() != size {
                return Err(bad(path, "labels", format!("shape [{size}]"), l.len()));
            }
            if let Some(i) = l.iter().position(|&y| y != 0.0 && y != 1.0) {
                return Err(bad(
                    path,
                    "labels",
                    "labels 0 or 1",
                    format!("{} at {i}", l[i]),
                ));
            }
            Some(l)
        }
    };
    let n_tables = (0..)
        .take_while(|t| r.st.tensor(&format!("offsets_{t}")).is_ok())
        .count();
    if let Some(stray) = r.st.names().into_iter().find(|n| {
        n.strip_prefix("offsets_")
            .or_else(|| n.strip_prefix("indices_"))
            .and_then(|t| t.parse::<usize>().ok())
            .is_some_and(|t| t >= n_tables)
    }) {
        return Err(bad(
            path,
            stray,
            format!("tables numbered 0..{n_tables} without gaps, each with offsets and indices"),
            "a table outside that range",
        ));
    }
    if size > 0 && n_dense == 0 && n_tables == 0 {
        // Nothing would back the sample count: `[2^60, 0]` costs no bytes but claims 2^60 samples.
        return Err(bad(
            path,
            "dense",
            "samples with features: dense [B, n] with n > 0, or offsets_0 / indices_0",
            format!("shape [{size}, 0] and no tables"),
        ));
    }
    if !table_rows.is_empty() && table_rows.len() != n_tables {
        return Err(bad(
            path,
            "offsets_*",
            format!("{} tables", table_rows.len()),
            format!("{n_tables} tables"),
        ));
    }
    let mut sparse = Vec::with_capacity(n_tables);
    for t in 0..n_tables {
        let (on, iname, wname) = (
            format!("offsets_{t}"),
            format!("indices_{t}"),
            format!("weights_{t}"),
        );
        let mut offsets = i64s(&r.need(&on, Dtype::I64, 1)?);
        let ids = i64s(&r.need(&iname, Dtype::I64, 1)?);
        let weights = r.get(&wname, Dtype::F32, 1)?.map(|w| f32s(&w));
        if offsets.len() != size {
            return Err(bad(path, &on, format!("shape [{size}]"), offsets.len()));
        }
        let nnz = ids.len() as i64;
        if let Some(i) = (0..offsets.len()).find(|&i| {
            let prev = if i == 0 { 0 } else { offsets[i - 1] };
            offsets[i] < prev || offsets[i] > nnz || (i == 0 && offsets[0] != 0)
        }) {
            return Err(bad(
                path,
                &on,
                format!("non-decreasing bag starts from 0 up to {nnz}"),
                format!("{} at position {i}", offsets[i]),
            ));
        }
        offsets.push(nnz);
        if let Some(w) = &weights
            && w.len() != ids.len()
        {
            return Err(bad(path, &wname, format!("shape [{nnz}]"), w.len()));
        }
        if let Some(&rows) = table_rows.get(t)
            && let Some(i) = ids
                .iter()
                .position(|&id| id < 0 || id as u64 >= rows as u64)
        {
            return Err(bad(
                path,
                &iname,
                format!("ids in 0..{rows}"),
                format!("id {} at position {i}", ids[i]),
            ));
        }
        sparse.push(SparseFeature {
            offsets,
            ids,
            weights,
        });
    }
    let batch = Batch {
        size,
        n_dense,
        dense,
        sparse,
        labels,
    };
    batch_ops::validate(&batch, table_rows)?;
    Ok(batch)
}

/// Writes `batch` as a batch file (the module's layout).
pub fn write_batch_file(path: &Path, batch: &Batch) -> Result<()> {
    batch_ops::validate(batch, &[])?;
    let le_f32 = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let le_i64 = |v: &[i64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = vec![(
        "dense".into(),
        Dtype::F32,
        vec![batch.size, batch.n_dense],
        le_f32(&batch.dense),
    )];
    if let Some(l) = &batch.labels {
        owned.push(("labels".into(), Dtype::F32, vec![batch.size], le_f32(l)));
    }
    for (t, f) in batch.sparse.iter().enumerate() {
        let starts = &f.offsets[..batch.size];
        owned.push((
            format!("offsets_{t}"),
            Dtype::I64,
            vec![batch.size],
            le_i64(starts),
        ));
        owned.push((
            format!("indices_{t}"),
            Dtype::I64,
            vec![f.ids.len()],
            le_i64(&f.ids),
        ));
        if let Some(w) = &f.weights {
            owned.push((format!("weights_{t}"), Dtype::F32, vec![w.len()], le_f32(w)));
        }
    }
    let views = owned
        .iter()
        .map(|(name, dtype, shape, data)| {
            TensorView::new(*dtype, shape.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(st_err(path))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = HashMap::from([("format".to_string(), "quantrec-batch".to_string())]);
    safetensors::serialize_to_file(views, Some(meta), path).map_err(st_err(path))
}

/// A [`BatchSource`] over a batch file, cut into batches of the requested size.
pub struct BatchFileSource {
    path: PathBuf,
    all: Batch,
    next: usize,
    batch_size: usize,
    stats: SourceStats,
}

impl BatchFileSource {
    /// Reads the file (ids checked against `table_rows` unless empty).
    pub fn open(path: &Path, table_rows: &[usize], batch_size: usize) -> Result<Self> {
        Ok(BatchFileSource {
            path: path.to_path_buf(),
            all: read_batch_file(path, table_rows)?,
            next: 0,
            batch_size: batch_size.max(1),
            stats: SourceStats::default(),
        })
    }

    /// The file this source reads.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl BatchSource for BatchFileSource {
    fn next_batch(&mut self) -> Result<Option<Batch>> {
        if self.next >= self.all.size {
            return Ok(None);
        }
        let end = (self.next + self.batch_size).min(self.all.size);
        let b = batch_ops::slice(&self.all, self.next, end);
        self.stats.rows += b.size as u64;
        self.next = end;
        Ok(Some(b))
    }

    fn n_dense(&self) -> usize {
        self.all.n_dense
    }

    fn n_tables(&self) -> usize {
        self.all.sparse.len()
    }

    fn stats(&self) -> &SourceStats {
        &self.stats
    }
}
