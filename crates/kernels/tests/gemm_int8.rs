//! int8 Linear: every kernel this CPU runs against the scalar oracle (raw i32 accumulators exact,
//! f32 and u8 epilogues), awkward shapes, extreme data, and errors.

use quantrec_kernels::KernelError;
use quantrec_kernels::gemm::int8::{
    Int8Input, Int8Kernel, Int8Output, choose_qparams, scalar, weight_scale,
};
use quantrec_kernels::gemm::{
    ActivationQuant, Int8Spec, LinearScratch, PackedLinear, Precision, QParams,
};
use quantrec_kernels::rng::Rng;

/// Shapes covering m ∈ {0,1,2,15,16,17,255}, k ∈ {1,3,13,64,479,1024}, n ∈ {1,7,16,33,256}, plus
/// the AMX blockings: pairs of 16-row blocks with a single one left over (m = 33, 48), and 1, 2, 3, 4
/// column panels per step for a single row block (n = 20, 40, 100, 256).
const SHAPES: [(usize, usize, usize); 16] = [
    (48, 1024, 100),
    (33, 479, 40),
    (16, 13, 20),
    (64, 1, 256),
    (0, 13, 7),
    (1, 1, 1),
    (1, 479, 256),
    (1, 1024, 33),
    (2, 3, 33),
    (15, 64, 16),
    (16, 1024, 7),
    (17, 13, 256),
    (16, 479, 16),
    (255, 64, 33),
    (255, 479, 1),
    (17, 3, 7),
];

fn spec(per_channel: bool, activations: ActivationQuant) -> Precision {
    Precision::Int8(Int8Spec {
        per_channel,
        activations,
    })
}

fn layer(rng: &mut Rng, n: usize, k: usize, prec: Precision) -> (Vec<f32>, Vec<f32>, PackedLinear) {
    let mut w = rng.normal_vec(n * k, 0.1);
    // Give channels very different ranges so per-channel scales differ.
    for j in 0..n {
        let f = 1.0 + (j % 5) as f32 * 3.0;
        w[j * k..(j + 1) * k].iter_mut().for_each(|v| *v *= f);
    }
    let b = rng.normal_vec(n, 0.5);
    let lin = PackedLinear::new(&w, Some(&b), n, k, prec).unwrap();
    (w, b, lin)
}

fn u8_vec(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| match i % 11 {
            0 => 255,
            1 => 0,
            _ => rng.below(256) as u8,
        })
        .collect()
}

/// What the oracle computes for f32 input: qparams, codes, raw accumulators.
fn oracle_quantize(lin: &PackedLinear, x: &[f32], reduce_range: bool) -> (QParams, Vec<u8>) {
    let q = match lin.precision() {
        Precision::Int8(Int8Spec {
            activations: ActivationQuant::Static(q),
            ..
        }) => q,
        _ => {
            let (lo, hi, _) = scalar::min_max(x);
            choose_qparams(lo, hi, reduce_range)
        }
    };
    let codes = x
        .iter()
        .map(|&v| scalar::quantize_u8(v, 1.0 / q.scale, q.zero_point))
        .collect();
    (q, codes)
}

fn oracle_acc(lin: &PackedLinear, a: &[u8], m: usize) -> Vec<i32> {
    let w = lin.int8_weights().unwrap();
    let mut acc = vec![0i32; m * lin.n()];
    scalar::reference_accumulate(a, m, lin.k(), &w.codes(), lin.n(), &mut acc);
    acc
}

fn oracle_f32(lin: &PackedLinear, acc: &[i32], q: QParams, relu: bool) -> Vec<f32> {
    let w = lin.int8_weights().unwrap();
    let n = lin.n();
    acc.iter()
        .enumerate()
        .map(|(i, &a)| {
            let j = i % n;
            scalar::dequantize(a, q, w.col_sums()[j], w.scales()[j], lin.bias()[j], relu)
        })
        .collect()
}

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

#[test]
fn raw_accumulators_exact_at_every_kernel() {
    let mut rng = Rng::new(11);
    for &(m, k, n) in &SHAPES {
        for per_channel in [false, true] {
            let (_, _, lin) = layer(&mut rng, n, k, spec(per_channel, ActivationQuant::Dynamic));
            let a = u8_vec(&mut rng, m * k);
            let want = oracle_acc(&lin, &a, m);
            let xq = QParams {
                scale: 0.05,
                zero_point: 17,
            };
            for kernel in Int8Kernel::available() {
                let mut got = vec![0i32; m * n];
                let mut s = LinearScratch::default();
                lin.forward_int8(
                    kernel,
                    Int8Input::U8(&a, xq),
                    m,
                    Int8Output::RawI32(&mut got),
                    false,
                    &mut s,
                )
                .unwrap();
                assert_eq!(got, want, "{} m={m} k={k} n={n}", kernel.name());
            }
        }
    }
}

#[test]
fn f32_and_u8_outputs_match_oracle_at_every_kernel() {
    let mut rng = Rng::new(12);
    let static_q = QParams {
        scale: 0.02,
        zero_point: 100,
    };
    for &(m, k, n) in &SHAPES {
        for per_channel in [false, true] {
            for act in [ActivationQuant::Dynamic, ActivationQuant::Static(static_q)] {
                for reduce in [false, true] {
                    let (_, _, lin) = layer(&mut rng, n, k, spec(per_channel, act));
                    let lin = lin.int8_reduce_range(reduce).unwrap();
                    let x: Vec<f32> = rng.normal_vec(m * k, 1.0).iter().map(|v| v + 0.3).collect();
                    let (q, codes) = oracle_quantize(&lin, &x, reduce);
                    let acc = oracle_acc(&lin, &codes, m);
                    let out_q = QParams {
                        scale: 0.07,
                        zero_point: 31,
                    };
                    for relu in [false, true] {
                        let want = oracle_f32(&lin, &acc, q, relu);
                        let want_u8: Vec<u8> = oracle_f32(&lin, &acc, q, false)
                            .iter()
                            .map(|&y| scalar::requantize(y, out_q, relu))
                            .collect();
                        for kernel in Int8Kernel::available() {
                            let ctx = format!(
                                "{} m={m} k={k} n={n} pc={per_channel} {act:?} rr={reduce} relu={relu}",
                                kernel.name()
                            );
                            let mut s = LinearScratch::default();
                            let mut got = vec![f32::NAN; m * n];
                            let inp = Int8Input::F32(&x);
                            let o = Int8Output::F32(&mut got);
                            lin.forward_int8(kernel, inp, m, o, relu, &mut s).unwrap();
                            assert_close(&got, &want, &ctx);
                            let mut got_u8 = vec![0u8; m * n];
                            let o = Int8Output::U8(&mut got_u8, out_q);
                            lin.forward_int8(kernel, inp, m, o, relu, &mut s).unwrap();
                            assert_eq!(got_u8, want_u8, "{ctx} u8 out");
                            // u8 in (the codes the f32 path produced) gives the same outputs.
                            let inp = Int8Input::U8(&codes, q);
                            let o = Int8Output::F32(&mut got);
                            lin.forward_int8(kernel, inp, m, o, relu, &mut s).unwrap();
                            assert_close(&got, &want, &format!("{ctx} u8 in"));
                        }
                    }
                }
            }
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
fn extreme_data_at_every_kernel() {
    let (m, k, n) = (5, 67, 20);
    let mut rng = Rng::new(14);
    // Worst case for 16-bit pair sums: all activations 255 against weights of −128 and 127.
    let mut w = vec![0f32; n * k];
    for (i, v) in w.iter_mut().enumerate() {
        *v = if i % 3 == 0 { 2.55 } else { -2.55 };
    }
    let cases: Vec<(&str, Vec<f32>, Vec<f32>)> = vec![
        ("all equal activations", w.clone(), vec![3.25; m * k]),
        ("all zero activations", w.clone(), vec![0.0; m * k]),
        (
            "huge range",
            w.clone(),
            (0..m * k)
                .map(|i| if i % 2 == 0 { 3e30 } else { -1e-30 * i as f32 })
                .collect(),
        ),
        ("zero weights", vec![0.0; n * k], rng.normal_vec(m * k, 2.0)),
        ("saturation", w.clone(), {
            let mut x = vec![100.0; m * k];
            x[0] = -0.001;
            x
        }),
    ];
    for (name, w, x) in cases {
        for per_channel in [false, true] {
            let lin =
                PackedLinear::new(&w, None, n, k, spec(per_channel, ActivationQuant::Dynamic))
                    .unwrap();
            let codes = lin.int8_weights().unwrap().codes();
            if name == "saturation" {
                assert!(codes.contains(&-128) && codes.contains(&127));
            }
            let (q, a) = oracle_quantize(&lin, &x, false);
            if name == "saturation" {
                assert!(a.iter().filter(|&&c| c == 255).count() > m * k / 2);
            }
            let acc = oracle_acc(&lin, &a, m);
            let want = oracle_f32(&lin, &acc, q, false);
            assert!(want.iter().all(|v| v.is_finite()), "{name}");
            for kernel in Int8Kernel::available() {
                let mut s = LinearScratch::default();
                let mut raw = vec![0i32; m * n];
                let o = Int8Output::RawI32(&mut raw);
                lin.forward_int8(kernel, Int8Input::F32(&x), m, o, false, &mut s)
                    .unwrap();
                assert_eq!(raw, acc, "{name} {}", kernel.name());
                let mut got = vec![0f32; m * n];
                let o = Int8Output::F32(&mut got);
                lin.forward_int8(kernel, Int8Input::F32(&x), m, o, false, &mut s)
                    .unwrap();
                assert_close(&got, &want, &format!("{name} {}", kernel.name()));
            }
        }
    }
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
    let (m, k, n) = (3, 67, 5);
    let (_, _, lin) = layer(&mut rng, n, k, spec(false, ActivationQuant::Dynamic));
    let mut s = LinearScratch::default();
    let mut out = vec![0f32; m * n];
    for (at, bad) in [
        (0, f32::NAN),
        (63, f32::INFINITY),
        (150, f32::NEG_INFINITY),
        (200, f32::NAN),
    ] {
        let mut x = rng.normal_vec(m * k, 1.0);
        x[at] = bad;
        for kernel in Int8Kernel::available() {
            let o = Int8Output::F32(&mut out);
            let e = lin.forward_int8(kernel, Int8Input::F32(&x), m, o, false, &mut s);
            match e {
                Err(KernelError::NonFinite { row, col, .. }) => {
                    assert_eq!((row, col), (at / k, at % k), "{}", kernel.name())
                }
                other => panic!("{}: {other:?}", kernel.name()),
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
