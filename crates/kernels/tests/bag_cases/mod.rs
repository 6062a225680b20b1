//! Shared by the embedding-bag test files: random tables in every format, lookups in owned form
//! (either id type, any bag encoding), the output sentinel and the bitwise comparison.
//!
//! Each test file compiles this module on its own and uses a subset of it.
#![allow(dead_code)]

use half::{bf16, f16};
use quantrec_kernels::embedding_bag::{Bags, Indices, Lookup};
use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::rng::Rng;

/// Output sentinel: any float a kernel fails to write (or writes where it must not) shows up.
pub const SENTINEL: f32 = -12345.678;

/// Random table bytes: finite values for float formats, random codes (padding bits included) and
/// random scale/bias for fused formats.
pub fn random_table(format: TableFormat, rows: usize, dim: usize, rng: &mut Rng) -> Vec<u8> {
    let mut data = Vec::with_capacity(rows * format.row_bytes(dim));
    for _ in 0..rows {
        match format {
            TableFormat::F32 => {
                for _ in 0..dim {
                    data.extend_from_slice(&rng.uniform_f32(-2.0, 2.0).to_le_bytes());
                }
            }
            TableFormat::F16 => {
                for _ in 0..dim {
                    let v = f16::from_f32(rng.uniform_f32(-2.0, 2.0));
                    data.extend_from_slice(&v.to_le_bytes());
                }
            }
            TableFormat::Bf16 => {
                for _ in 0..dim {
                    let v = bf16::from_f32(rng.uniform_f32(-2.0, 2.0));
                    data.extend_from_slice(&v.to_le_bytes());
                }
            }
            _ => {
                for _ in 0..format.code_bytes(dim) {
                    data.push(rng.next_u64() as u8);
                }
                let scale = rng.uniform_f32(1e-3, 0.2);
                let bias = rng.uniform_f32(-1.0, 1.0);
                if format == TableFormat::Fused8 {
                    data.extend_from_slice(&scale.to_le_bytes());
                    data.extend_from_slice(&bias.to_le_bytes());
                } else {
                    data.extend_from_slice(&f16::from_f32(scale).to_le_bytes());
                    data.extend_from_slice(&f16::from_f32(bias).to_le_bytes());
                }
            }
        }
    }
    data
}

/// How bag boundaries are handed to the kernel.
#[derive(Clone, Copy, Debug)]
pub enum Encoding {
    Offsets,
    OffsetsTrailing,
    Lengths,
}

/// One lookup in owned form, convertible to either id type and any encoding.
#[derive(Clone)]
pub struct Case {
    pub ids: Vec<i64>,
    pub lengths: Vec<usize>,
    pub weights: Vec<f32>,
}

impl Case {
    pub fn new(lengths: Vec<usize>, id_limit: usize, rng: &mut Rng) -> Case {
        let n: usize = lengths.iter().sum();
        let ids = (0..n).map(|_| rng.below(id_limit as u64) as i64).collect();
        let weights = (0..n).map(|_| rng.uniform_f32(-1.5, 1.5)).collect();
        Case {
            ids,
            lengths,
            weights,
        }
    }

    pub fn bounds(&self, enc: Encoding) -> Vec<i64> {
        match enc {
            Encoding::Lengths => self.lengths.iter().map(|&l| l as i64).collect(),
            _ => {
                let mut o = Vec::with_capacity(self.lengths.len() + 1);
                let mut acc = 0i64;
                for &l in &self.lengths {
                    o.push(acc);
                    acc += l as i64;
                }
                if matches!(enc, Encoding::OffsetsTrailing) {
                    o.push(acc);
                }
                o
            }
        }
    }
}

/// Owned index storage for a [`Lookup`] in either id type.
pub struct Owned {
    pub ids64: Vec<i64>,
    pub ids32: Vec<i32>,
    pub b64: Vec<i64>,
    pub b32: Vec<i32>,
}

impl Owned {
    pub fn new(case: &Case, enc: Encoding) -> Owned {
        let b64 = case.bounds(enc);
        Owned {
            ids32: case.ids.iter().map(|&i| i as i32).collect(),
            b32: b64.iter().map(|&i| i as i32).collect(),
            ids64: case.ids.clone(),
            b64,
        }
    }

    pub fn lookup<'a>(&'a self, case: &'a Case, enc: Encoding, wide: bool) -> Lookup<'a> {
        let (indices, b) = if wide {
            (Indices::I64(&self.ids64), Indices::I64(&self.b64))
        } else {
            (Indices::I32(&self.ids32), Indices::I32(&self.b32))
        };
        Lookup {
            indices,
            bags: match enc {
                Encoding::Lengths => Bags::Lengths(b),
                _ => Bags::Offsets(b),
            },
            num_bags: case.lengths.len(),
            per_sample_weights: Some(&case.weights),
        }
    }
}

/// Asserts `got` is `want` bit for bit (same length first), naming the bag and column of a
/// difference.
pub fn assert_same(want: &[f32], got: &[f32], stride: usize, what: &str) {
    assert_eq!(want.len(), got.len(), "{what}: output length");
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        assert!(
            w.to_bits() == g.to_bits(),
            "{what}: bag {} column {}: oracle {w:e}, kernel {g:e}",
            i / stride,
            i % stride
        );
    }
}
