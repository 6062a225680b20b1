//! Named f32 tensors read from and written to safetensors files (PyTorch state dicts).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use half::{bf16, f16};
use safetensors::tensor::View as StView;
use safetensors::{Dtype, SafeTensors};

use crate::{ModelError, Result};

/// One tensor widened to f32.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor of `shape` holding `data`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        Tensor { shape, data }
    }
}

/// A state dict: tensor name → f32 tensor, sorted by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateDict {
    /// The float tensors.
    pub tensors: BTreeMap<String, Tensor>,
    /// Tensors of other dtypes (e.g. integer buffers), name → dtype; not read.
    pub other: BTreeMap<String, String>,
}

/// Decodes a little-endian tensor of `dtype` to f32 (F32, F16, BF16 and F64 are accepted).
pub fn to_f32(name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    Ok(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        other => {
            return Err(ModelError::TensorDtype {
                name: name.into(),
                expected: "F32, F16, BF16 or F64".into(),
                found: format!("{other:?}"),
            });
        }
    })
}

impl StateDict {
    /// Parses a safetensors buffer; float tensors are widened to f32, others listed in `other`. `what` names it in errors.
    pub fn from_bytes(what: &str, bytes: &[u8]) -> Result<StateDict> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| ModelError::safetensors(what, e))?;
        let mut tensors = BTreeMap::new();
        let mut other = BTreeMap::new();
        for (name, view) in st.iter() {
            match view.dtype() {
                Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64 => {
                    let data = to_f32(name, view.dtype(), view.data())?;
                    tensors.insert(name.to_string(), Tensor::new(view.shape().to_vec(), data));
                }
                d => {
                    other.insert(name.to_string(), format!("{d:?}"));
                }
            }
        }
        Ok(StateDict { tensors, other })
    }

    /// Reads a safetensors file.
    pub fn load(path: &Path) -> Result<StateDict> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        StateDict::from_bytes(&path.display().to_string(), &bytes)
    }

    /// Serializes every tensor as F32 safetensors.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let views = self.tensors.iter().map(|(n, t)| {
            (
                n.clone(),
                RawTensor {
                    dtype: Dtype::F32,
                    shape: t.shape.clone(),
                    bytes: t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                },
            )
        });
        safetensors::serialize(views, None).map_err(|e| ModelError::safetensors("state dict", e))
    }

    /// Writes every tensor as F32 safetensors.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        std::fs::write(path, bytes).map_err(|e| ModelError::io(path, e))
    }
}

/// An owned tensor of any dtype, for writing safetensors files.
#[derive(Clone, Debug)]
pub struct RawTensor {
    /// Element type.
    pub dtype: Dtype,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Little-endian bytes.
    pub bytes: Vec<u8>,
}

impl StView for RawTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}
