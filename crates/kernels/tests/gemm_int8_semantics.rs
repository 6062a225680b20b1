//! int8 Linear semantics: the two dynamic activation modes, the default entry points, PyTorch's
//! weight observer, FBGEMM's activation parameters and dynamic-Linear recipe, accuracy against the
//! 7-bit recipe, typed errors, the parallel split, non-finite inputs and stored codes.

mod int8;

use int8::{layer, spec, u8_vec};
use quantrec_kernels::KernelError;
use quantrec_kernels::gemm::int8::{
    Int8Input, Int8Kernel, Int8Output, choose_qparams, weight_scale,
};
use quantrec_kernels::gemm::{
    ActivationQuant, Int8Spec, LinearScratch, PackedLinear, Precision, QParams,
};
use quantrec_kernels::rng::Rng;

fn assert_close(got: &[f32], want: &[f32], ctx: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-6 * w.abs().max(1e-30);
        assert!(
            (g - w).abs() <= tol,
            "{ctx}: element {i}: got {g}, want {w}"
        );
    }
}

/// The documented semantics of the two dynamic modes: per-tensor `Dynamic` takes its parameters
/// from the whole batch, so a row's output changes when a row with a wider range joins it;
/// `DynamicPerRow` gives every row the same output alone and in any batch.
#[test]
fn per_tensor_dynamic_depends_on_the_batch_per_row_does_not() {
    let mut rng = Rng::new(19);
    let (k, n) = (64, 16);
    let mut x = rng.normal_vec(2 * k, 1.0);
    x[k..].iter_mut().for_each(|v| *v *= 50.0);
    for kernel in Int8Kernel::available() {
        for (act, depends) in [
            (ActivationQuant::Dynamic, true),
            (ActivationQuant::DynamicPerRow, false),
        ] {
            let (_, _, lin) = layer(&mut rng, n, k, spec(true, act));
            let mut s = LinearScratch::default();
            let (mut alone, mut pair) = (vec![0f32; n], vec![0f32; 2 * n]);
            let o = Int8Output::F32(&mut alone);
            lin.forward_int8(kernel, Int8Input::F32(&x[..k]), 1, o, false, &mut s)
                .unwrap();
            let o = Int8Output::F32(&mut pair);
            lin.forward_int8(kernel, Int8Input::F32(&x), 2, o, false, &mut s)
                .unwrap();
            assert_eq!(alone != pair[..n], depends, "{} {act:?}", kernel.name());
        }
    }
}

#[test]
fn default_entry_points_agree_with_explicit_kernel() {
    let mut rng = Rng::new(13);
    let (m, k, n) = (17, 479, 33);
    let (_, _, lin) = layer(&mut rng, n, k, spec(true, ActivationQuant::Dynamic));
    let x = rng.normal_vec(m * k, 1.0);
    let mut s = LinearScratch::default();
    let mut a = vec![0f32; m * n];
    let mut b = vec![0f32; m * n];
    lin.forward(&x, m, &mut a, true, &mut s).unwrap();
    let o = Int8Output::F32(&mut b);
    lin.forward_int8(Int8Kernel::Scalar, Int8Input::F32(&x), m, o, true, &mut s)
        .unwrap();
    assert_close(&a, &b, "forward vs scalar");
    let oq = QParams {
        scale: 0.1,
        zero_point: 0,
    };
    let (mut u, mut v) = (vec![0u8; m * n], vec![0u8; m * n]);
    lin.forward_f32_to_u8(&x, m, &mut u, oq, true, &mut s)
        .unwrap();
    let o = Int8Output::U8(&mut v, oq);
    lin.forward_int8(Int8Kernel::Scalar, Int8Input::F32(&x), m, o, true, &mut s)
        .unwrap();
    assert_eq!(u, v);
    let xq = QParams {
        scale: 0.1,
        zero_point: 3,
    };
    let codes = u8_vec(&mut rng, m * k);
    lin.forward_u8_to_u8(&codes, xq, m, &mut u, oq, false, &mut s)
        .unwrap();
    let o = Int8Output::U8(&mut v, oq);
    let inp = Int8Input::U8(&codes, xq);
    lin.forward_int8(Int8Kernel::Scalar, inp, m, o, false, &mut s)
        .unwrap();
    assert_eq!(u, v);
    lin.forward_u8_to_f32(&codes, xq, m, &mut a, false, &mut s)
        .unwrap();
    let o = Int8Output::F32(&mut b);
    lin.forward_int8(Int8Kernel::Scalar, inp, m, o, false, &mut s)
        .unwrap();
    assert_close(&a, &b, "u8 to f32");
}

#[test]
fn weight_quantization_is_pytorchs_observer() {
    // max|w| = 2.55 → scale = 2.55 / 127.5 = 0.02; codes round(w / 0.02) clamped to [−128, 127].
    let w = [2.55f32, -2.55, 1.01, -0.03, 0.0, 0.5];
    let lin = PackedLinear::new(&w, None, 2, 3, spec(false, ActivationQuant::Dynamic)).unwrap();
    let q = lin.int8_weights().unwrap();
    assert_eq!(q.scales()[0], 2.55f32 / 127.5);
    assert_eq!(q.codes(), vec![127, -128, 50, -2, 0, 25]);
    assert_eq!(q.col_sums(), &[49, 23]);
    // Per channel: row 1 has max 0.5 → scale 0.5/127.5.
    let lin = PackedLinear::new(&w, None, 2, 3, spec(true, ActivationQuant::Dynamic)).unwrap();
    let q = lin.int8_weights().unwrap();
    assert_eq!(q.scales()[1], 0.5f32 / 127.5);
    assert_eq!(q.codes()[3..], [-8, 0, 127]);
    // All-zero weights: the observer's eps scale, zero codes.
    let lin =
        PackedLinear::new(&[0.0; 4], None, 2, 2, spec(true, ActivationQuant::Dynamic)).unwrap();
    assert_eq!(lin.int8_weights().unwrap().scales(), &[f32::EPSILON; 2]);
    assert_eq!(weight_scale(0.0), f32::EPSILON);
}

#[test]
fn activation_qparams_are_fbgemms() {
    // [−1, 3] over 255 steps: scale 4/255, zero point round(255/4) = round(63.75) = 64.
    let q = choose_qparams(-1.0, 3.0, false);
    assert_eq!(q.scale, (4.0f64 / 255.0) as f32);
    assert_eq!(q.zero_point, 64);
    // reduce_range: 127 steps, zero point round(127/4) = round(31.75) = 32.
    let q = choose_qparams(-1.0, 3.0, true);
    assert_eq!(q.scale, (4.0f64 / 127.0) as f32);
    assert_eq!(q.zero_point, 32);
    // Positive-only ranges include 0; an empty range gets scale 0.1 (then the small-scale floor
    // does not apply); tiny ranges are widened to the 6.1e-5 floor.
    assert_eq!(choose_qparams(2.0, 5.0, false).zero_point, 0);
    assert_eq!(
        choose_qparams(0.0, 0.0, false),
        QParams {
            scale: 0.1,
            zero_point: 0
        }
    );
    let q = choose_qparams(-1e-6, 1e-6, false);
    assert_eq!(q.scale, 6.1e-5);
    assert_eq!(q.zero_point, 128);
    assert_eq!(choose_qparams(-4.0, -1.0, false).zero_point, 255);
}

/// PyTorch's `torch.ao.nn.quantized.dynamic.Linear` (FBGEMM) computes, for `x` and `W`:
/// weight scale `max|W|/127.5`, codes `round(W/scale)` in [−128, 127]; activations by
/// `ChooseQuantizationParams(min(x), max(x), 0, 255, reduce_range=True)` (qmax 127), codes
/// `round(x/s_x) + zp`; output `(Σ (a − zp)·w) · (s_x·s_w) + b`. Here that recipe is evaluated by hand
/// in f64 for a small layer, and our layer with `int8_reduce_range(true)` must agree to f32 rounding.
#[test]
fn matches_pytorch_dynamic_linear_recipe_by_hand() {
    // W = [[0.5, -1.0, 0.25], [2.0, 0.125, -0.75]] (max 2 → s_w = 2/127.5),
    // x = [[1.0, -0.5, 2.5]] (range [−0.5, 2.5] → s_x = 3/127, zp: from_min 0.5/s_x = 21.1667,
    // from_max 127 − 2.5/s_x = 21.1667; either way round → 21).
    let w = [0.5f32, -1.0, 0.25, 2.0, 0.125, -0.75];
    let b = [0.1f32, -0.2];
    let x = [1.0f32, -0.5, 2.5];
    let lin = PackedLinear::new(&w, Some(&b), 2, 3, spec(false, ActivationQuant::Dynamic))
        .unwrap()
        .int8_reduce_range(true)
        .unwrap();
    let sw = 2.0f64 / 127.5;
    // Weight codes: 0.5/sw = 31.875 → 32; −1/sw = −63.75 → −64; 0.25/sw = 15.94 → 16;
    // 2/sw = 127.5 → 128 → clamp 127; 0.125/sw = 7.97 → 8; −0.75/sw = −47.8 → −48.
    assert_eq!(
        lin.int8_weights().unwrap().codes(),
        vec![32, -64, 16, 127, 8, -48]
    );
    let sx = 3.0f64 / 127.0;
    let zp = 21i64;
    // Activation codes: 1/sx = 42.33 → 42 + 21 = 63; −0.5/sx = −21.17 → −21 + 21 = 0;
    // 2.5/sx = 105.83 → 106 + 21 = 127.
    let a = [63i64, 0, 127];
    let wq = [[32i64, -64, 16], [127, 8, -48]];
    let want: Vec<f64> = (0..2)
        .map(|j| {
            let acc: i64 = (0..3).map(|p| (a[p] - zp) * wq[j][p]).sum();
            acc as f64 * sx * sw + f64::from(b[j])
        })
        .collect();
    // Hand value for column 0: (42·32 + (−21)·(−64) + 106·16) = 1344 + 1344 + 1696 = 4384.
    assert_eq!((0..3).map(|p| (a[p] - zp) * wq[0][p]).sum::<i64>(), 4384);
    let mut out = [0f32; 2];
    lin.forward(&x, 1, &mut out, false, &mut LinearScratch::default())
        .unwrap();
    for j in 0..2 {
        assert!(
            (f64::from(out[j]) - want[j]).abs() <= 1e-6 * want[j].abs(),
            "{j}: {} vs {}",
            out[j],
            want[j]
        );
    }
    // And the int8 result stays within the quantization error of the f32 layer.
    for j in 0..2 {
        let exact: f32 = (0..3).map(|p| x[p] * w[j * 3 + p]).sum::<f32>() + b[j];
        let bound = 3.0 * (sx / 2.0 * 2.0 + sw / 2.0 * 2.5 + sx * sw) as f32;
        assert!(
            (out[j] - exact).abs() <= bound,
            "{j}: {} vs {exact}",
            out[j]
        );
    }
}

/// The full-range default is at least as accurate as PyTorch's 7-bit recipe on random layers
/// (mean absolute error against the f32 layer).
#[test]
fn full_range_default_is_at_least_as_accurate_as_reduce_range() {
    let mut rng = Rng::new(15);
    let (m, k, n) = (64, 256, 64);
    let (w, b, lin) = layer(&mut rng, n, k, spec(false, ActivationQuant::Dynamic));
    let x = rng.normal_vec(m * k, 1.0);
    let exact = PackedLinear::new(&w, Some(&b), n, k, Precision::F32).unwrap();
    let mut s = LinearScratch::default();
    let mut y32 = vec![0f32; m * n];
    exact.forward(&x, m, &mut y32, false, &mut s).unwrap();
    let err = |l: &PackedLinear| {
        let mut y = vec![0f32; m * n];
        l.forward(&x, m, &mut y, false, &mut LinearScratch::default())
            .unwrap();
        y.iter().zip(&y32).map(|(a, b)| (a - b).abs()).sum::<f32>() / (m * n) as f32
    };
    let full = err(&lin);
    let reduced = err(&lin.clone().int8_reduce_range(true).unwrap());
    assert!(full < reduced, "full {full} reduced {reduced}");
}

#[test]
fn bad_input_is_a_typed_error() {
    let mut rng = Rng::new(16);
    let (_, _, lin) = layer(&mut rng, 4, 5, spec(false, ActivationQuant::Dynamic));
    let mut s = LinearScratch::default();
    let mut out = vec![0f32; 8];
    let mut x = rng.normal_vec(10, 1.0);
    x[7] = f32::NAN;
    for kernel in Int8Kernel::available() {
        let o = Int8Output::F32(&mut out);
        let e = lin.forward_int8(kernel, Int8Input::F32(&x), 2, o, false, &mut s);
        assert!(
            matches!(e, Err(KernelError::NonFinite { row: 1, col: 2, .. })),
            "{e:?}"
        );
    }
    x[7] = f32::INFINITY;
    assert!(matches!(
        lin.forward(&x, 2, &mut out, false, &mut s),
        Err(KernelError::NonFinite { .. })
    ));
    x[7] = 0.0;
    assert!(matches!(
        lin.forward(&x, 3, &mut out, false, &mut s),
        Err(KernelError::Shape { .. })
    ));
    let bad = QParams {
        scale: 0.0,
        zero_point: 3,
    };
    let mut o8 = vec![0u8; 8];
    assert!(matches!(
        lin.forward_f32_to_u8(&x, 2, &mut o8, bad, false, &mut s),
        Err(KernelError::BadQuantParams { .. })
    ));
    let f32_layer = PackedLinear::new(&[0.0; 20], None, 4, 5, Precision::F32).unwrap();
    assert!(f32_layer.int8_weights().is_none());
    assert!(f32_layer.clone().int8_reduce_range(true).is_err());
    assert!(matches!(
        f32_layer.forward_f32_to_u8(
            &x,
            2,
            &mut o8,
            QParams {
                scale: 1.0,
                zero_point: 0
            },
            false,
            &mut s
        ),
        Err(KernelError::BadQuantParams { .. })
    ));
}

#[test]
fn parallel_split_matches_single_thread() {
    let mut rng = Rng::new(17);
    let (m, k, n) = (300, 256, 96);
    let (_, _, lin) = layer(&mut rng, n, k, spec(true, ActivationQuant::Dynamic));
    let x = rng.normal_vec(m * k, 1.0);
    let mut one = vec![0f32; m * n];
    let mut two = vec![0f32; m * n];
    let pool = |t| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap()
    };
    pool(1).install(|| {
        lin.forward(&x, m, &mut one, false, &mut LinearScratch::default())
            .unwrap()
    });
    pool(3).install(|| {
        lin.forward(&x, m, &mut two, false, &mut LinearScratch::default())
            .unwrap()
    });
    assert_eq!(one, two);
}

#[test]
fn non_finite_anywhere_in_long_inputs_is_found_at_every_kernel() {
    let mut rng = Rng::new(18);
    let (k, n) = (67, 5);
    // Per-tensor and per-row activation ranges find the value by different scans; 40 rows span
    // three of the per-row path's scan-and-quantize blocks (16 rows), the last one partial.
    let cases = [
        (
            3,
            vec![
                (0, f32::NAN),
                (63, f32::INFINITY),
                (150, f32::NEG_INFINITY),
                (200, f32::NAN),
            ],
        ),
        (
            40,
            vec![
                (5, f32::NAN),
                (16 * k + 3, f32::INFINITY),
                (40 * k - 1, f32::NEG_INFINITY),
            ],
        ),
    ];
    for act in [ActivationQuant::Dynamic, ActivationQuant::DynamicPerRow] {
        let (_, _, lin) = layer(&mut rng, n, k, spec(false, act));
        let mut s = LinearScratch::default();
        for (m, bads) in &cases {
            let m = *m;
            let mut out = vec![0f32; m * n];
            for &(at, bad) in bads {
                let mut x = rng.normal_vec(m * k, 1.0);
                x[at] = bad;
                for kernel in Int8Kernel::available() {
                    let o = Int8Output::F32(&mut out);
                    let e = lin.forward_int8(kernel, Int8Input::F32(&x), m, o, false, &mut s);
                    match e {
                        Err(KernelError::NonFinite { row, col, .. }) => {
                            assert_eq!((row, col), (at / k, at % k), "{} {act:?}", kernel.name())
                        }
                        other => panic!("{} {act:?} m={m}: {other:?}", kernel.name()),
                    }
                }
            }
        }
    }
}

#[test]
fn layers_from_stored_codes_run_exactly_those_codes() {
    use quantrec_kernels::gemm::int8::quantize_weights;
    let mut rng = Rng::new(41);
    let (m, n, k) = (9, 21, 37);
    let x = rng.normal_vec(m * k, 1.0);
    for per_channel in [false, true] {
        let prec = spec(per_channel, ActivationQuant::Dynamic);
        let Precision::Int8(s) = prec else {
            unreachable!()
        };
        let (w, b, lin) = layer(&mut rng, n, k, prec);
        let (codes, scales) = quantize_weights(&w, n, k, per_channel);
        assert_eq!(scales.len(), if per_channel { n } else { 1 });
        let q = lin.int8_weights().unwrap();
        assert_eq!(q.codes(), codes);
        assert_eq!(q.stored_scales(), &scales[..]);
        let again = PackedLinear::from_int8_codes(&codes, &scales, Some(&b), n, k, s).unwrap();
        let q2 = again.int8_weights().unwrap();
        assert_eq!(q2.codes(), codes);
        assert_eq!(q2.scales(), q.scales());
        assert_eq!(q2.col_sums(), q.col_sums());
        let (mut y1, mut y2) = (vec![0f32; m * n], vec![0f32; m * n]);
        let mut sc = LinearScratch::default();
        lin.forward(&x, m, &mut y1, true, &mut sc).unwrap();
        again.forward(&x, m, &mut y2, true, &mut sc).unwrap();
        assert_eq!(y1, y2);
        // Codes that re-quantizing code · scale would not reproduce (−128 everywhere) still load.
        let extreme = vec![-128i8; n * k];
        let e = PackedLinear::from_int8_codes(&extreme, &scales, None, n, k, s).unwrap();
        assert_eq!(e.int8_weights().unwrap().codes(), extreme);
    }
    let s = Int8Spec {
        per_channel: true,
        activations: ActivationQuant::Dynamic,
    };
    let codes = vec![1i8; 6];
    for (scales, what) in [
        (vec![1.0f32; 2], "wrong scale count"),
        (vec![1.0, 0.0, 1.0], "zero scale"),
        (vec![1.0, f32::NAN, 1.0], "NaN scale"),
        (vec![1.0, -1.0, 1.0], "negative scale"),
    ] {
        assert!(
            PackedLinear::from_int8_codes(&codes, &scales, None, 3, 2, s).is_err(),
            "{what}"
        );
    }
    assert!(PackedLinear::from_int8_codes(&codes[..5], &[1.0; 3], None, 3, 2, s).is_err());
    assert!(PackedLinear::from_int8_codes(&codes, &[1.0; 3], Some(&[0.0; 2]), 3, 2, s).is_err());
    let bad_static = Int8Spec {
        per_channel: false,
        activations: ActivationQuant::Static(QParams {
            scale: 0.0,
            zero_point: 0,
        }),
    };
    assert!(PackedLinear::from_int8_codes(&codes, &[1.0], None, 3, 2, bad_static).is_err());
}
