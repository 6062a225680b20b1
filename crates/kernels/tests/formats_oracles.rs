//! The table-format kernels equal to their scalar oracles at every implementation, through
//! [`kernel_suite!`]: the greedy range search, codes, packed codes and min/max, row decoders.

mod rows;

use quantrec_kernels::formats::codes::Codes;
use quantrec_kernels::formats::decode::Decode;
use quantrec_kernels::formats::greedy::Greedy;
use quantrec_kernels::formats::greedy::scalar::search_row;
use quantrec_kernels::formats::{CodeOps, TableFormat, dequantize_row};
use quantrec_kernels::kernel_suite;
use quantrec_kernels::registry::KernelFamily;
use quantrec_kernels::rng::Rng;
use quantrec_kernels::testing::{OracleSuite, RowWise, SIMD_SIZES, extremes};
use rows::table;

/// Greedy range search at every implementation, bit for bit against [`search_row`]: row
/// shapes of every kind (see `rows::row`) at awkward dimensions; rows are searched one per vector
/// lane, so a row's range must not depend on the rows beside it (row independence).
struct GreedySuite;

/// A table of `dim`-wide rows to search with `bits`.
struct Search {
    src: Vec<f32>,
    dim: usize,
    bits: u32,
}

impl OracleSuite for GreedySuite {
    type Family = Greedy;
    type Case = Search;
    type Elem = (f32, f32);

    fn cases(_: &mut Rng) -> Vec<Search> {
        let mut v = Vec::new();
        for (seed, &(rows, dim)) in [
            (1, 1),
            (7, 3),
            (17, 4),
            (33, 16),
            (21, 17),
            (40, 64),
            (5, 128),
        ]
        .iter()
        .enumerate()
        {
            let src = table(seed as u64, rows, dim);
            for bits in [2u32, 4, 8] {
                v.push(Search {
                    src: src.clone(),
                    dim,
                    bits,
                });
            }
        }
        v
    }

    fn describe(c: &Search) -> String {
        format!("{}×{} {} bits", c.src.len() / c.dim, c.dim, c.bits)
    }

    fn reference(c: &Search) -> Vec<(f32, f32)> {
        c.src
            .chunks_exact(c.dim)
            .map(|r| search_row(r, c.bits))
            .collect()
    }

    fn run(index: usize, c: &Search) -> Vec<(f32, f32)> {
        let mut got = vec![(0.0, 0.0); c.src.len() / c.dim];
        Greedy::get(index)
            .unwrap()
            .search(&c.src, c.dim, c.bits, &mut got)
            .unwrap();
        got
    }
}

impl RowWise for GreedySuite {
    fn row_cases(_: &mut Rng) -> Vec<Search> {
        vec![
            Search {
                src: table(77, 300, 24),
                dim: 24,
                bits: 4,
            },
            Search {
                src: table(78, 300, 17),
                dim: 17,
                bits: 2,
            },
        ]
    }

    fn rows(c: &Search) -> usize {
        c.src.len() / c.dim
    }

    fn take_rows(c: &Search, start: usize, len: usize) -> Search {
        Search {
            src: c.src[start * c.dim..(start + len) * c.dim].to_vec(),
            dim: c.dim,
            bits: c.bits,
        }
    }

    fn row_len(_: &Search) -> usize {
        1
    }
}

kernel_suite!(greedy: GreedySuite, rows);

/// One row for the code kernels: values, bias, inverse scale and `qmax`.
struct CodeRow {
    x: Vec<f32>,
    bias: f32,
    inverse: f32,
    qmax: i32,
    trial: usize,
}

/// Codes, packed codes and min/max at every implementation, bit for bit against the scalar
/// implementation: awkward lengths (empty, single, around the 8-, 16-, 32- and 64-wide steps),
/// exact ties between codes, signed zeros and NaNs, every `qmax`.
struct CodesSuite;

fn code_outputs(ops: &CodeOps, c: &CodeRow) -> Vec<u32> {
    let n = c.x.len();
    let mut codes = vec![7u8; n];
    ops.codes(&c.x, c.bias, c.inverse, c.qmax, &mut codes)
        .unwrap();
    let bits = 32 - (c.qmax as u32).leading_zeros();
    let mut packed = vec![9u8; (n * bits as usize).div_ceil(8)];
    ops.packed_codes(&c.x, c.bias, c.inverse, bits, &mut Vec::new(), &mut packed)
        .unwrap();
    let (a, b) = ops.min_max(&c.x);
    codes
        .iter()
        .chain(&packed)
        .map(|&v| u32::from(v))
        .chain([a.to_bits(), b.to_bits()])
        .collect()
}

impl OracleSuite for CodesSuite {
    type Family = Codes;
    type Case = CodeRow;
    type Elem = u32;

    fn cases(rng: &mut Rng) -> Vec<CodeRow> {
        let mut v = Vec::new();
        for n in SIMD_SIZES {
            for trial in 0..20 {
                let mut x: Vec<f32> = (0..n).map(|_| rng.normal() as f32 * 3.0).collect();
                if trial % 4 == 1 {
                    // Exact ties between codes: (x - bias) · inverse lands on k + 1/2.
                    x = (0..n).map(|i| (i % 40) as f32 * 0.5 - 2.0).collect();
                }
                if trial % 4 == 2 && n > 2 {
                    x[n / 2] = -0.0;
                    x[0] = 0.0;
                    x[n - 1] = f32::NAN;
                }
                let (bias, inverse) = (
                    rng.uniform_f32(-3.0, 1.0),
                    [1.0, 2.0, 0.37, 40.0][trial % 4],
                );
                for qmax in [1, 3, 15, 255] {
                    v.push(CodeRow {
                        x: x.clone(),
                        bias,
                        inverse,
                        qmax,
                        trial,
                    });
                }
            }
        }
        // Extreme rows: all equal, huge magnitudes (codes clamp at 0 and qmax).
        for (_, x) in extremes(rng, 67, 1e6) {
            for qmax in [1, 15, 255] {
                v.push(CodeRow {
                    x: x.clone(),
                    bias: -2.0,
                    inverse: 3.0,
                    qmax,
                    trial: usize::MAX,
                });
            }
        }
        v
    }

    fn describe(c: &CodeRow) -> String {
        format!("n {} trial {} qmax {}", c.x.len(), c.trial, c.qmax)
    }

    fn reference(c: &CodeRow) -> Vec<u32> {
        code_outputs(Codes::get(0).unwrap(), c)
    }

    fn run(index: usize, c: &CodeRow) -> Vec<u32> {
        code_outputs(Codes::get(index).unwrap(), c)
    }
}

kernel_suite!(codes: CodesSuite);

/// One stored row to decode.
struct StoredRow {
    format: TableFormat,
    dim: usize,
    row: Vec<u8>,
}

/// Row decoders at every implementation against [`dequantize_row`], bit for bit (a NaN decodes to
/// some NaN): every format and dimension, random bytes, finite and raw scales and biases.
struct DecodeSuite;

impl OracleSuite for DecodeSuite {
    type Family = Decode;
    type Case = StoredRow;
    type Elem = f32;

    fn cases(rng: &mut Rng) -> Vec<StoredRow> {
        let mut v = Vec::new();
        for format in TableFormat::ALL {
            for dim in SIMD_SIZES.into_iter().chain([4, 12, 20, 28, 36, 100, 132]) {
                if format.check_dim(dim).is_err() {
                    continue;
                }
                for trial in 0..8 {
                    let mut row: Vec<u8> = (0..format.row_bytes(dim))
                        .map(|_| rng.next_u64() as u8)
                        .collect();
                    if trial == 7 {
                        // The largest codes (all-ones bytes).
                        row[..format.code_bytes(dim)].fill(0xff);
                    }
                    if trial % 2 == 0 && format.is_fused() {
                        // Finite scale and bias most of the time; raw random bytes otherwise.
                        let c = format.code_bytes(dim);
                        let (s, b) = (rng.uniform_f32(1e-3, 2.0), rng.uniform_f32(-3.0, 3.0));
                        if format == TableFormat::Fused8 {
                            row[c..c + 4].copy_from_slice(&s.to_le_bytes());
                            row[c + 4..c + 8].copy_from_slice(&b.to_le_bytes());
                        } else {
                            row[c..c + 2].copy_from_slice(&half::f16::from_f32(s).to_le_bytes());
                            row[c + 2..c + 4]
                                .copy_from_slice(&half::f16::from_f32(b).to_le_bytes());
                        }
                    }
                    v.push(StoredRow { format, dim, row });
                }
            }
        }
        v
    }

    fn describe(c: &StoredRow) -> String {
        format!("{} dim {}", c.format, c.dim)
    }

    fn reference(c: &StoredRow) -> Vec<f32> {
        let mut expected = vec![0f32; c.dim];
        dequantize_row(c.format, &c.row, &mut expected);
        expected
    }

    fn run(index: usize, c: &StoredRow) -> Vec<f32> {
        let mut got = vec![1f32; c.dim];
        Decode::get(index)
            .unwrap()
            .decode(c.format, &c.row, &mut got)
            .unwrap();
        got
    }

    fn check(_: &StoredRow, want: &[f32], got: &[f32]) -> Result<(), String> {
        match want
            .iter()
            .zip(got)
            .position(|(b, a)| !(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())))
        {
            None if want.len() == got.len() => Ok(()),
            None => Err("length differs".into()),
            Some(i) => Err(format!("element {i}: {} vs {}", got[i], want[i])),
        }
    }
}

kernel_suite!(decode: DecodeSuite);
