//! Properties of the table formats: quantization error bounds, termination of the greedy search
//! on rows PyTorch loops forever on, level pinning, typed errors. The kernels against their scalar
//! oracles (through [`kernel_suite!`](quantrec_kernels::kernel_suite)) are in `formats_oracles.rs`.

mod rows;

use proptest::prelude::*;
use quantrec_kernels::formats::greedy::scalar::search_row;
use quantrec_kernels::formats::{
    CodeOps, DecodeOps, GreedyOps, QuantizeOptions, TableFormat, TableRef, dequantize_row,
    dequantize_table, dequantize_table_with, quantize_row, quantize_table, quantize_table_f16,
    quantize_table_with, row_scale_bias,
};
use quantrec_kernels::rng::Rng;
use quantrec_kernels::{Isa, KernelError, QuantProblem};
use rows::{row, table};

/// The fused formats with their greedy option.
const FUSED: [(TableFormat, bool); 7] = [
    (TableFormat::Fused8, false),
    (TableFormat::Fused8Half, false),
    (TableFormat::Fused4, false),
    (TableFormat::Fused2, false),
    (TableFormat::Fused8Half, true),
    (TableFormat::Fused4, true),
    (TableFormat::Fused2, true),
];

#[test]
fn greedy_search_ends_on_rows_below_float_resolution() {
    let mut rng = Rng::new(3);
    let rows = 40;
    let src: Vec<f32> = (0..rows).flat_map(|_| row(&mut rng, 5, 64)).collect();
    // These rows do trap PyTorch's loop: it starts, and a step no longer moves the lower bound.
    for x in src.chunks_exact(64) {
        let mn = x.iter().copied().fold(f32::INFINITY, f32::min);
        let mx = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let step = (mx - mn) / 200.0;
        assert!(
            mn + 168.0 * step < mx && mn + step == mn && mx - step == mx,
            "{mn} {mx}"
        );
    }
    for isa in Isa::available() {
        let ops = GreedyOps::for_isa(isa).unwrap();
        for bits in [2u32, 4] {
            let mut got = vec![(0.0, 0.0); rows];
            ops.search(&src, 64, bits, &mut got).unwrap();
            for (r, &(lo, hi)) in got.iter().enumerate() {
                let x = &src[r * 64..(r + 1) * 64];
                let mn = x.iter().copied().fold(f32::INFINITY, f32::min);
                let mx = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                assert!(
                    mn <= lo && lo <= hi && hi <= mx,
                    "{isa} row {r}: [{lo}, {hi}]"
                );
            }
        }
    }
}

#[test]
fn parallel_table_quantization_equals_row_by_row() {
    let (rows, dim) = (1100, 16);
    let src = table(11, rows, dim);
    for (format, greedy) in FUSED {
        let opts = QuantizeOptions {
            greedy,
            refine: false,
            name: "t",
        };
        let whole = quantize_table(&src, rows, dim, format, &opts).unwrap();
        let rb = format.row_bytes(dim);
        let mut one = vec![0u8; rb];
        for r in 0..rows {
            quantize_row(&src[r * dim..(r + 1) * dim], format, &opts, &mut one).unwrap();
            assert_eq!(
                &whole[r * rb..(r + 1) * rb],
                &one[..],
                "{format} greedy={greedy} row {r}"
            );
        }
    }
}

#[test]
fn non_finite_values_name_table_row_and_column() {
    let mut src = vec![0.5f32; 6 * 8];
    src[3 * 8 + 5] = f32::NAN;
    src[4 * 8 + 1] = f32::INFINITY;
    for format in TableFormat::ALL {
        let err = quantize_table(
            &src,
            6,
            8,
            format,
            &QuantizeOptions {
                greedy: false,
                refine: false,
                name: "emb7",
            },
        )
        .unwrap_err();
        match err {
            KernelError::NonFinite {
                table,
                row,
                col,
                value,
                ..
            } => {
                assert_eq!(table.as_deref(), Some("emb7"));
                assert_eq!((row, col), (3, 5));
                assert!(value.is_nan());
            }
            e => panic!("{format}: {e:?}"),
        }
    }
}

#[test]
fn unsupported_dims_and_options_are_errors() {
    let src = vec![0.1f32; 2 * 6];
    let opts = QuantizeOptions {
        greedy: false,
        refine: false,
        name: "t",
    };
    assert!(matches!(
        quantize_table(&src[..10], 2, 5, TableFormat::Fused4, &opts),
        Err(KernelError::UnsupportedDim { dim: 5, .. })
    ));
    assert!(matches!(
        quantize_table(&src, 2, 6, TableFormat::Fused2, &opts),
        Err(KernelError::UnsupportedDim { dim: 6, .. })
    ));
    assert!(quantize_table(&src, 2, 6, TableFormat::Fused4, &opts).is_ok());
    assert!(matches!(
        quantize_table(&src, 3, 6, TableFormat::Fused8, &opts),
        Err(KernelError::Shape { .. })
    ));
    let greedy = QuantizeOptions {
        greedy: true,
        refine: false,
        name: "t",
    };
    let refine = QuantizeOptions {
        greedy: false,
        refine: true,
        name: "t",
    };
    for format in [
        TableFormat::F32,
        TableFormat::F16,
        TableFormat::Bf16,
        TableFormat::Fused8,
    ] {
        for opts in [&greedy, &refine] {
            assert!(matches!(
                quantize_table(&src, 2, 6, format, opts),
                Err(KernelError::BadQuantParams { .. })
            ));
        }
    }
}

/// Squared decode error of each row of a quantized table.
fn row_errors(format: TableFormat, src: &[f32], dim: usize, packed: &[u8]) -> Vec<f64> {
    let rb = format.row_bytes(dim);
    let mut back = vec![0f32; dim];
    src.chunks_exact(dim)
        .zip(packed.chunks_exact(rb))
        .map(|(x, row)| {
            dequantize_row(format, row, &mut back);
            x.iter()
                .zip(&back)
                .map(|(&a, &b)| ((a - b) as f64).powi(2))
                .sum()
        })
        .collect()
}

#[test]
fn least_squares_refit_never_loses_to_greedy_and_wins_on_gaussian_rows() {
    for (format, greedy_too) in [
        (TableFormat::Fused2, true),
        (TableFormat::Fused4, true),
        (TableFormat::Fused8Half, false),
    ] {
        for dim in [4usize, 16, 64] {
            let rows = 300;
            let src = table(11 + dim as u64, rows, dim);
            let plain = QuantizeOptions {
                greedy: greedy_too,
                refine: false,
                name: "t",
            };
            let refit = QuantizeOptions {
                refine: true,
                ..plain
            };
            let a = quantize_table(&src, rows, dim, format, &plain).unwrap();
            let b = quantize_table(&src, rows, dim, format, &refit).unwrap();
            let (ea, eb) = (
                row_errors(format, &src, dim, &a),
                row_errors(format, &src, dim, &b),
            );
            for (r, (x, y)) in ea.iter().zip(&eb).enumerate() {
                assert!(y <= x, "{format} d {dim} row {r}: refit {y} > {x}");
            }
            // Gaussian rows (kinds 0 and 10+ of `row`): the refit must gain at 2 and 4 bits.
            let gaussian =
                |e: &[f64]| -> f64 { (0..rows).filter(|r| r % 10 == 0).map(|r| e[r]).sum() };
            if format != TableFormat::Fused8Half {
                assert!(
                    gaussian(&eb) < 0.99 * gaussian(&ea),
                    "{format} d {dim}: {} vs {}",
                    gaussian(&eb),
                    gaussian(&ea)
                );
            }
            eprintln!(
                "{format} d {dim}: gaussian-row error refit/plain {:.3}, all rows {:.3}",
                gaussian(&eb) / gaussian(&ea),
                eb.iter().sum::<f64>() / ea.iter().sum::<f64>()
            );
        }
    }
}

#[test]
fn values_beyond_the_half_range_are_errors_not_infinities() {
    let mut src = vec![0.1f32; 2 * 4];
    src[5] = 70000.0;
    let opts = QuantizeOptions {
        greedy: false,
        refine: false,
        name: "big",
    };
    let err = quantize_table(&src, 2, 4, TableFormat::F16, &opts).unwrap_err();
    assert!(
        matches!(
            &err,
            KernelError::BadQuantParams {
                problem: QuantProblem::Overflow { row: 1, col: 1, .. },
                ..
            }
        ),
        "{err}"
    );
    src[5] = -70000.0;
    for format in [
        TableFormat::Fused8Half,
        TableFormat::Fused4,
        TableFormat::Fused2,
    ] {
        assert!(matches!(
            quantize_table(&src, 2, 4, format, &opts),
            Err(KernelError::BadQuantParams { .. })
        ));
    }
    // f32 scale and bias hold it, and bf16 has f32's exponent range.
    assert!(quantize_table(&src, 2, 4, TableFormat::Fused8, &opts).is_ok());
    assert!(quantize_table(&src, 2, 4, TableFormat::Bf16, &opts).is_ok());
    src[5] = f32::MAX;
    src[6] = -f32::MAX;
    assert!(quantize_table(&src, 2, 4, TableFormat::Fused8, &opts).is_err());
}

#[test]
fn half_formats_round_to_nearest_even() {
    let one = 1.0f32;
    // Exactly between two bf16 values: ties go to the even mantissa.
    let src = [
        one + 2f32.powi(-8),
        one + 3.0 * 2f32.powi(-8),
        one + 2f32.powi(-11),
        one + 3.0 * 2f32.powi(-11),
    ];
    let opts = QuantizeOptions::default();
    let bf = quantize_table(&src, 1, 4, TableFormat::Bf16, &opts).unwrap();
    let mut out = [0f32; 4];
    dequantize_row(TableFormat::Bf16, &bf, &mut out);
    assert_eq!(out[..2], [1.0, 1.0 + 4.0 * 2f32.powi(-8)]);
    let h = quantize_table(&src, 1, 4, TableFormat::F16, &opts).unwrap();
    dequantize_row(TableFormat::F16, &h, &mut out);
    assert_eq!(out[2..], [1.0, 1.0 + 4.0 * 2f32.powi(-11)]);
}

#[test]
fn f16_input_quantizes_like_its_f32_widening() {
    let src = table(5, 40, 32);
    let halves: Vec<half::f16> = src.iter().map(|&v| half::f16::from_f32(v)).collect();
    let widened: Vec<f32> = halves.iter().map(|v| v.to_f32()).collect();
    for (format, greedy) in FUSED {
        let opts = QuantizeOptions {
            greedy,
            refine: false,
            name: "h",
        };
        assert_eq!(
            quantize_table_f16(&halves, 40, 32, format, &opts).unwrap(),
            quantize_table(&widened, 40, 32, format, &opts).unwrap()
        );
    }
    // f16 → f16 is the identity on the bytes.
    let bytes = quantize_table_f16(
        &halves,
        40,
        32,
        TableFormat::F16,
        &QuantizeOptions::default(),
    )
    .unwrap();
    let raw: Vec<u8> = halves.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(bytes, raw);
}

/// Checks the error bound of one quantized row: inside the row's clipping range
/// `[bias, bias + qmax·scale]`, `|x - x̂| ≤ scale/2` up to float rounding (and FBGEMM's 1e-8 epsilon
/// for fused8); without greedy clipping, values outside it are off by no more than the f16 rounding
/// of the bias and scale.
fn check_row_error(format: TableFormat, greedy: bool, x: &[f32], packed: &[u8]) {
    let dim = x.len();
    let mut y = vec![0f32; dim];
    dequantize_row(format, packed, &mut y);
    let (scale, bias) = row_scale_bias(format, dim, packed);
    let qmax = ((1u32 << format.bits()) - 1) as f32;
    let top = bias + qmax * scale;
    let mag = x
        .iter()
        .fold(bias.abs().max(top.abs()), |m, v| m.max(v.abs()));
    let slack = mag * 4.0 * f32::EPSILON + 1e-8;
    for (c, (&xv, &yv)) in x.iter().zip(&y).enumerate() {
        let err = (xv - yv).abs();
        if xv >= bias && xv <= top {
            assert!(
                err <= scale / 2.0 + slack,
                "{format} greedy={greedy} col {c}: {xv} → {yv}, scale {scale}, bias {bias}"
            );
        } else if !greedy {
            // Relative rounding of normal f16 values; in the subnormal range, half the 2^-24 spacing
            // on the bias and on each of the `qmax` steps of the scale.
            let f16_rounding = if format == TableFormat::Fused8 {
                0.0
            } else {
                mag * 2f32.powi(-10) + (qmax + 1.0) * 2f32.powi(-25)
            };
            let outside = (bias - xv).max(xv - top);
            assert!(
                outside <= f16_rounding + slack && err <= scale / 2.0 + outside + slack,
                "{format} col {c}: {xv} → {yv} lies {outside} outside [{bias}, {top}]"
            );
        }
    }
}

fn row_strategy(multiple: usize) -> impl Strategy<Value = Vec<f32>> {
    (1usize..40, -20i32..20, -30i32..4, any::<u64>()).prop_map(
        move |(n, center_exp, spread_exp, seed)| {
            let mut rng = Rng::new(seed);
            let center = if center_exp == -20 {
                0.0
            } else {
                2f32.powi(center_exp / 2) * rng.uniform_f32(-1.0, 1.0)
            };
            let spread = 2f32.powi(spread_exp);
            (0..n * multiple)
                .map(|_| center + spread * rng.uniform_f32(-1.0, 1.0))
                .collect()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn fused_rows_decode_within_half_a_step(x in row_strategy(4)) {
        for (format, greedy) in FUSED {
            let mut packed = vec![0u8; format.row_bytes(x.len())];
            quantize_row(&x, format, &QuantizeOptions { greedy, refine: false, name: "p" }, &mut packed).unwrap();
            check_row_error(format, greedy, &x, &packed);
        }
    }

    #[test]
    fn half_formats_round_trip_within_half_an_ulp(x in row_strategy(1)) {
        let dim = x.len();
        for (format, rel) in [(TableFormat::F16, 2f32.powi(-11)), (TableFormat::Bf16, 2f32.powi(-8))] {
            let packed = quantize_table(&x, 1, dim, format, &QuantizeOptions::default()).unwrap();
            let table = TableRef::new(format, 1, dim, &packed).unwrap();
            let mut y = vec![0f32; dim];
            dequantize_table(&table, &mut y).unwrap();
            for (&a, &b) in x.iter().zip(&y) {
                // Relative half-ulp for normals; f16 subnormals are spaced 2^-24 apart.
                prop_assert!((a - b).abs() <= a.abs() * rel + 2f32.powi(-25), "{format}: {a} → {b}");
            }
        }
    }

    #[test]
    fn greedy_ranges_match_scalar_on_random_rows(x in row_strategy(1), bits in prop::sample::select(vec![2u32, 4, 8])) {
        let expected = search_row(&x, bits);
        for isa in Isa::available() {
            let mut got = [(0.0, 0.0)];
            GreedyOps::for_isa(isa).unwrap().search(&x, x.len(), bits, &mut got).unwrap();
            prop_assert_eq!(got[0].0.to_bits(), expected.0.to_bits(), "{}", isa);
            prop_assert_eq!(got[0].1.to_bits(), expected.1.to_bits(), "{}", isa);
        }
    }
}

#[test]
fn quantize_table_with_pins_the_isa_level_without_changing_bytes() {
    // 37 rows: two 16-row greedy blocks and a padded one; dimension 24: an 8-wide tail at AVX-512.
    let (rows, dim) = (37, 24);
    let src = table(9, rows, dim);
    for (format, greedy) in FUSED {
        let opts = QuantizeOptions {
            greedy,
            refine: false,
            name: "t",
        };
        let rb = format.row_bytes(dim);
        let mut reference = vec![0u8; rows * rb];
        quantize_table_with(Isa::Scalar, &src, rows, dim, format, &opts, &mut reference).unwrap();
        for isa in Isa::available() {
            let mut out = vec![0u8; rows * rb];
            quantize_table_with(isa, &src, rows, dim, format, &opts, &mut out).unwrap();
            assert_eq!(out, reference, "{format} greedy={greedy} at {isa}");
        }
    }
}

#[test]
fn code_kernels_refuse_bad_arguments() {
    for isa in Isa::available() {
        let ops = CodeOps::for_isa(isa).unwrap();
        let mut short = [0u8; 3];
        assert!(matches!(
            ops.codes(&[1.0; 4], 0.0, 1.0, 15, &mut short),
            Err(KernelError::Shape {
                expected: 4,
                found: 3,
                ..
            })
        ));
        let mut out = [0u8; 4];
        assert!(matches!(
            ops.codes(&[1.0; 4], 0.0, 1.0, 256, &mut out),
            Err(KernelError::BadQuantParams { .. })
        ));
    }
    assert!(CodeOps::for_isa(Isa::Vnni).is_ok() == (Isa::detected() >= Isa::Vnni));
}

#[test]
fn row_decoders_refuse_bad_rows() {
    let ops = DecodeOps::for_isa(Isa::Scalar).unwrap();
    assert!(matches!(
        ops.decode(TableFormat::Fused4, &[0u8; 5], &mut [0f32; 4]),
        Err(KernelError::Shape {
            expected: 6,
            found: 5,
            ..
        })
    ));
    assert!(matches!(
        ops.decode(TableFormat::Fused2, &[0u8; 6], &mut [0f32; 6]),
        Err(KernelError::UnsupportedDim { .. })
    ));
}

#[test]
fn whole_table_decoding_is_the_same_at_every_level() {
    let (rows, dim) = (700, 36);
    let src = table(4, rows, dim);
    for format in TableFormat::ALL {
        if format.check_dim(dim).is_err() {
            continue;
        }
        let packed = quantize_table(&src, rows, dim, format, &QuantizeOptions::default()).unwrap();
        let t = TableRef::new(format, rows, dim, &packed).unwrap();
        let mut reference = vec![0f32; rows * dim];
        for r in 0..rows {
            dequantize_row(format, t.row(r), &mut reference[r * dim..(r + 1) * dim]);
        }
        for isa in Isa::available() {
            let mut out = vec![0f32; rows * dim];
            dequantize_table_with(isa, &t, &mut out).unwrap();
            assert!(out == reference, "{format} at {isa}");
        }
    }
}

#[test]
fn the_first_unrepresentable_row_is_reported_across_parallel_tasks() {
    let (rows, dim) = (1300, 8);
    let mut src = vec![0.25f32; rows * dim];
    src[1100 * dim + 3] = 1e6;
    src[700 * dim + 2] = -1e6;
    for format in [
        TableFormat::F16,
        TableFormat::Fused4,
        TableFormat::Fused8Half,
    ] {
        let err = quantize_table(&src, rows, dim, format, &QuantizeOptions::default()).unwrap_err();
        assert!(
            matches!(
                &err,
                KernelError::BadQuantParams {
                    problem: QuantProblem::Overflow { row: 700, .. }
                        | QuantProblem::RowScaleBias { row: 700, .. },
                    ..
                }
            ),
            "{format}: {err}"
        );
    }
}
