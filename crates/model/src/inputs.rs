//! Batches stored as safetensors: `dense` f32 `[B, n_dense]` (already transformed), per table
//! `offsets_{t}` (one start per bag, no trailing end) and `indices_{t}` (i64 or i32), optional
//! `weights_{t}` (f32 per id), `labels` (f32 `[B]`) and `expected` (f32 `[B]`, a reference output).

use safetensors::{Dtype, SafeTensors};

use crate::state_dict::to_f32;
use crate::{ModelError, Result};
use quantrec_data::batch::{Batch, SparseFeature};

/// A batch read from an inputs file, with the reference output when the file has one.
#[derive(Clone, Debug, PartialEq)]
pub struct InputFile {
    /// The batch (offsets with the trailing end added).
    pub batch: Batch,
    /// `expected`, when present.
    pub expected: Option<Vec<f32>>,
}

fn ints(name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<i64>> {
    match dtype {
        Dtype::I64 => Ok(bytes
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect()),
        Dtype::I32 => Ok(bytes
            .chunks_exact(4)
            .map(|b| i64::from(i32::from_le_bytes(b.try_into().expect("4 bytes"))))
            .collect()),
        other => Err(ModelError::TensorDtype {
            name: name.into(),
            expected: "I64 or I32".into(),
            found: format!("{other:?}"),
        }),
    }
}

/// Parses an inputs buffer; `what` names it in errors.
pub fn read_inputs(what: &str, bytes: &[u8]) -> Result<InputFile> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| ModelError::safetensors(what, e))?;
    let get = |name: &str| {
        st.tensor(name).map_err(|_| ModelError::MissingTensor {
            name: name.into(),
            expected: format!("part of the inputs file {what}"),
        })
    };
    let dense = get("dense")?;
    let (size, n_dense) = match dense.shape() {
        [b, n] => (*b, *n),
        s => {
            return Err(ModelError::TensorShape {
                name: "dense".into(),
                expected: "[batch, dense features]".into(),
                found: s.to_vec(),
            });
        }
    };
    let dense_v = to_f32("dense", dense.dtype(), dense.data())?;
    let mut sparse = Vec::new();
    while st.tensor(&format!("offsets_{}", sparse.len())).is_ok() {
        let t = sparse.len();
        let (on, iname) = (format!("offsets_{t}"), format!("indices_{t}"));
        let o = get(&on)?;
        let mut offsets = ints(&on, o.dtype(), o.data())?;
        if offsets.len() != size {
            return Err(ModelError::TensorShape {
                name: on,
                expected: format!("[{size}] (one start per sample, no trailing end)"),
                found: o.shape().to_vec(),
            });
        }
        let i = get(&iname)?;
        let ids = ints(&iname, i.dtype(), i.data())?;
        offsets.push(ids.len() as i64);
        let wn = format!("weights_{t}");
        let weights = match st.tensor(&wn) {
            Ok(w) => Some(to_f32(&wn, w.dtype(), w.data())?),
            Err(_) => None,
        };
        sparse.push(SparseFeature {
            offsets,
            ids,
            weights,
        });
    }
    if size > 0 && n_dense == 0 && sparse.is_empty() {
        // Nothing would back the sample count: `[2^60, 0]` costs no bytes but claims 2^60 samples.
        return Err(ModelError::TensorShape {
            name: "dense".into(),
            expected: "[batch, n] with n > 0, or at least one table (offsets_0, indices_0)".into(),
            found: vec![size, 0],
        });
    }
    let vec1 = |name: &str| -> Result<Option<Vec<f32>>> {
        match st.tensor(name) {
            Ok(t) => {
                let v = to_f32(name, t.dtype(), t.data())?;
                if v.len() != size {
                    return Err(ModelError::TensorShape {
                        name: name.into(),
                        expected: format!("[{size}]"),
                        found: t.shape().to_vec(),
                    });
                }
                Ok(Some(v))
            }
            Err(_) => Ok(None),
        }
    };
    Ok(InputFile {
        batch: Batch {
            size,
            n_dense,
            dense: dense_v,
            sparse,
            labels: vec1("labels")?,
        },
        expected: vec1("expected")?,
    })
}

/// Reads an inputs file.
pub fn load_inputs(path: &std::path::Path) -> Result<InputFile> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
    read_inputs(&path.display().to_string(), &bytes)
}
