//! Quantizing the 2-D tables of a safetensors file to a row-wise format (`quantrec convert`).
//!
//! Every selected 2-D f32/f16/bf16 tensor is converted to the target format, keeping its name;
//! everything else is copied unchanged. Fused outputs are U8 tensors of shape `[rows, row_bytes]`,
//! exactly what PyTorch's `embedding_bag_{byte,4bit,2bit}_prepack` return (so
//! `torch.ops.quantized.embedding_bag_*_rowwise_offsets` accept them); f16/bf16 outputs are
//! F16/BF16 tensors. `__metadata__` keeps the input's entries and gains `quantrec.format.<name>` =
//! format name for every converted tensor, plus `quantrec.convert` = a JSON summary.

use std::collections::HashMap;
use std::fmt::{self, Display, Formatter};
use std::path::Path;

use half::{bf16, f16};
use quantrec_kernels::formats::{QuantizeOptions, TableFormat, quantize_table};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::{ModelError, Result};

/// How tables are converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvertOptions {
    /// Target format.
    pub format: TableFormat,
    /// Each row's clipping range from PyTorch's greedy L2 search (N-bit formats).
    pub greedy: bool,
    /// Then refit each N-bit row's f16 scale and bias by least squares.
    pub refine: bool,
}

/// One converted tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvertedTensor {
    /// Its name.
    pub name: String,
    /// Input element type.
    pub dtype: Dtype,
    /// Input shape.
    pub shape: Vec<usize>,
    /// Input bytes.
    pub bytes: usize,
    /// Output shape.
    pub out_shape: Vec<usize>,
    /// Output bytes.
    pub out_bytes: usize,
}

/// What a conversion did.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvertSummary {
    /// The options.
    pub options: ConvertOptions,
    /// Converted tensors, in name order.
    pub converted: Vec<ConvertedTensor>,
    /// Tensors copied unchanged.
    pub copied: usize,
}

/// A tensor of the output file.
struct Out {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

/// Converts the tensors of `input` that `select` accepts (every convertible one when `None`; a
/// selected tensor that is not convertible is an error) and writes `output`.
pub fn convert_file(
    input: &Path,
    output: &Path,
    options: ConvertOptions,
    select: Option<&dyn Fn(&str) -> bool>,
) -> Result<ConvertSummary> {
    let what = input.display().to_string();
    let bytes = std::fs::read(input).map_err(|e| ModelError::io(input, e))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| ModelError::safetensors(&what, e))?;
    let (_, header) =
        SafeTensors::read_metadata(&bytes).map_err(|e| ModelError::safetensors(&what, e))?;
    let mut metadata: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
    let mut outputs: Vec<(String, Out)> = Vec::new();
    let mut converted = Vec::new();
    let mut names = st.names();
    names.sort();
    for name in names {
        let view = st
            .tensor(name)
            .map_err(|e| ModelError::safetensors(&what, e))?;
        let selected = select.is_none_or(|f| f(name));
        let convertible = view.shape().len() == 2
            && matches!(view.dtype(), Dtype::F32 | Dtype::F16 | Dtype::BF16);
        if selected && !convertible && select.is_some() {
            return Err(ModelError::TensorDtype {
                name: name.to_string(),
                expected: "a 2-D f32/f16/bf16 tensor (it matches --tensors)".into(),
                found: format!("{:?} {:?}", view.dtype(), view.shape()),
            });
        }
        if !(selected && convertible) {
            let out = Out {
                dtype: view.dtype(),
                shape: view.shape().to_vec(),
                data: view.data().to_vec(),
            };
            outputs.push((name.to_string(), out));
            continue;
        }
        let out = convert(name, &view, options)?;
        converted.push(ConvertedTensor {
            name: name.to_string(),
            dtype: view.dtype(),
            shape: view.shape().to_vec(),
            bytes: view.data().len(),
            out_shape: out.shape.clone(),
            out_bytes: out.data.len(),
        });
        metadata.insert(
            format!("quantrec.format.{name}"),
            options.format.name().to_string(),
        );
        outputs.push((name.to_string(), out));
    }
    if converted.is_empty() {
        return Err(ModelError::NothingToConvert {
            file: what,
            filtered: select.is_some(),
        });
    }
    let names: Vec<&str> = converted.iter().map(|c| c.name.as_str()).collect();
    metadata.insert(
        "quantrec.convert".to_string(),
        serde_json::json!({
            "format": options.format.name(),
            "greedy": options.greedy,
            "refine": options.refine,
            "tensors": names,
        })
        .to_string(),
    );
    write(output, &outputs, metadata)?;
    Ok(ConvertSummary {
        options,
        copied: outputs.len() - converted.len(),
        converted,
    })
}

fn write(
    output: &Path,
    outputs: &[(String, Out)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let what = output.display().to_string();
    let views = outputs
        .iter()
        .map(|(n, o)| {
            TensorView::new(o.dtype, o.shape.clone(), &o.data)
                .map(|v| (n.clone(), v))
                .map_err(|e| ModelError::safetensors(format!("output tensor {n}"), e))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize_to_file(views, Some(metadata), output)
        .map_err(|e| ModelError::safetensors(what, e))
}

/// The values of a 2-D float tensor as f32.
fn values(view: &TensorView<'_>) -> Vec<f32> {
    let data = view.data();
    match view.dtype() {
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    }
}

/// Quantizes one 2-D float tensor.
fn convert(name: &str, view: &TensorView<'_>, options: ConvertOptions) -> Result<Out> {
    let (rows, dim) = (view.shape()[0], view.shape()[1]);
    let format = options.format;
    let opts = QuantizeOptions {
        greedy: options.greedy,
        refine: options.refine,
        name,
    };
    let packed = quantize_table(&values(view), rows, dim, format, &opts).map_err(|source| {
        ModelError::ConvertTensor {
            tensor: name.to_string(),
            format: format.to_string(),
            source: Box::new(source),
        }
    })?;
    let (dtype, shape) = match format {
        TableFormat::F32 => (Dtype::F32, vec![rows, dim]),
        TableFormat::F16 => (Dtype::F16, vec![rows, dim]),
        TableFormat::Bf16 => (Dtype::BF16, vec![rows, dim]),
        _ => (Dtype::U8, vec![rows, format.row_bytes(dim)]),
    };
    Ok(Out {
        dtype,
        shape,
        data: packed,
    })
}

impl ConvertedTensor {
    /// `name: F32 [rows, dim] (bytes) -> format [rows, row_bytes] (bytes)`.
    pub fn line(&self, format: TableFormat) -> String {
        format!(
            "{}: {:?} {:?} ({} bytes) -> {} {:?} ({} bytes)",
            self.name, self.dtype, self.shape, self.bytes, format, self.out_shape, self.out_bytes
        )
    }
}

/// The summary line (after which the caller names the output file).
impl Display for ConvertSummary {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let before: usize = self.converted.iter().map(|c| c.bytes).sum();
        let after: usize = self.converted.iter().map(|c| c.out_bytes).sum();
        write!(
            f,
            "converted {} tensor(s) to {}{}: {} bytes -> {} bytes ({:.2}x smaller); copied {} other tensor(s)",
            self.converted.len(),
            self.options.format,
            match (self.options.greedy, self.options.refine) {
                (true, true) => " (greedy ranges, least-squares refit)",
                (true, false) => " (greedy ranges)",
                (false, true) => " (least-squares refit)",
                (false, false) => "",
            },
            before,
            after,
            before as f64 / after.max(1) as f64,
            self.copied
        )
    }
}
