//! int8 Linear: every kernel this CPU runs against the scalar oracle through [`kernel_suite!`] (raw
//! i32 accumulators, f32 and u8 epilogues, bit for bit; per-tensor, static and per-row activation
//! parameters), awkward shapes, extreme data, the row-independence property, and errors.

use quantrec_kernels::gemm::int8::{
    Int8Family, Int8Input, Int8Kernel, Int8Output, choose_qparams, scalar, weight_scale,
};
use quantrec_kernels::gemm::{
    ActivationQuant, Int8Spec, LinearScratch, PackedLinear, Precision, QParams,
};
use quantrec_kernels::rng::Rng;
use quantrec_kernels::testing::{OracleSuite, RowWise};
use quantrec_kernels::{KernelError, kernel_suite};

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

fn oracle_acc(lin: &PackedLinear, a: &[u8], m: usize) -> Vec<i32> {
    let w = lin.int8_weights().unwrap();
    let mut acc = vec![0i32; m * lin.n()];
    scalar::reference_accumulate(a, m, lin.k(), &w.codes(), lin.n(), &mut acc);
    acc
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

/// What a case feeds the layer.
#[derive(Clone)]
enum Input {
    /// f32 activations, quantized per the layer's [`ActivationQuant`].
    F32(Vec<f32>),
    /// u8 codes with their parameters.
    U8(Vec<u8>, QParams),
}

/// What a case reads back.
#[derive(Clone, Copy, Debug)]
enum Output {
    Raw,
    F32,
    U8(QParams),
}

/// One int8 call.
struct Int8Case {
    m: usize,
    k: usize,
    n: usize,
    w: Vec<f32>,
    b: Vec<f32>,
    per_channel: bool,
    act: ActivationQuant,
    reduce: bool,
    input: Input,
    output: Output,
    relu: bool,
    what: &'static str,
}

impl Int8Case {
    fn layer(&self) -> PackedLinear {
        PackedLinear::new(
            &self.w,
            Some(&self.b),
            self.n,
            self.k,
            spec(self.per_channel, self.act),
        )
        .unwrap()
        .int8_reduce_range(self.reduce)
        .unwrap()
    }
}

/// The oracle's activation parameters of every row and the codes of an input.
fn oracle_codes(c: &Int8Case) -> (Vec<QParams>, Vec<u8>) {
    let (m, k) = (c.m, c.k);
    match &c.input {
        Input::U8(a, q) => (vec![*q; m], a.clone()),
        Input::F32(x) => {
            let qs: Vec<QParams> = match c.act {
                ActivationQuant::Static(q) => vec![q; m],
                ActivationQuant::Dynamic => {
                    let (lo, hi, _) = scalar::min_max(x);
                    vec![choose_qparams(lo, hi, c.reduce); m]
                }
                ActivationQuant::DynamicPerRow => (0..m)
                    .map(|i| {
                        let (lo, hi, _) = scalar::min_max(&x[i * k..(i + 1) * k]);
                        choose_qparams(lo, hi, c.reduce)
                    })
                    .collect(),
            };
            let codes = (0..m * k)
                .map(|i| {
                    let q = qs[i / k.max(1)];
                    scalar::quantize_u8(x[i], 1.0 / q.scale, q.zero_point)
                })
                .collect();
            (qs, codes)
        }
    }
}

/// int8 layers at every [`Int8Kernel`] against the scalar oracle, bit for bit: raw accumulators,
/// f32 outputs `(acc − zp·colsum)·(x_scale·w_scale) + b`, u8 requantized outputs.
struct Int8Suite;

impl OracleSuite for Int8Suite {
    type Family = Int8Family;
    type Case = Int8Case;
    type Elem = u32;

    fn cases(rng: &mut Rng) -> Vec<Int8Case> {
        let static_q = QParams {
            scale: 0.02,
            zero_point: 100,
        };
        let out_q = QParams {
            scale: 0.07,
            zero_point: 31,
        };
        let xq = QParams {
            scale: 0.05,
            zero_point: 17,
        };
        let mut v = Vec::new();
        for &(m, k, n) in &SHAPES {
            for per_channel in [false, true] {
                let (w, b, _) = layer(rng, n, k, spec(per_channel, ActivationQuant::Dynamic));
                let base = |input, output, act, reduce, relu, what| Int8Case {
                    m,
                    k,
                    n,
                    w: w.clone(),
                    b: b.clone(),
                    per_channel,
                    act,
                    reduce,
                    input,
                    output,
                    relu,
                    what,
                };
                // Raw accumulators of u8 codes (every code, 0 and 255 included).
                let a = u8_vec(rng, m * k);
                v.push(base(
                    Input::U8(a, xq),
                    Output::Raw,
                    ActivationQuant::Dynamic,
                    false,
                    false,
                    "raw",
                ));
                for act in [
                    ActivationQuant::Dynamic,
                    ActivationQuant::Static(static_q),
                    ActivationQuant::DynamicPerRow,
                ] {
                    for reduce in [false, true] {
                        let x: Vec<f32> =
                            rng.normal_vec(m * k, 1.0).iter().map(|v| v + 0.3).collect();
                        for relu in [false, true] {
                            for output in [Output::F32, Output::U8(out_q)] {
                                let input = Input::F32(x.clone());
                                v.push(base(input, output, act, reduce, relu, "f32 in"));
                            }
                        }
                        // u8 in: the codes the f32 path produces, with their parameters.
                        if act != ActivationQuant::DynamicPerRow {
                            let probe =
                                base(Input::F32(x.clone()), Output::F32, act, reduce, false, "");
                            let (qs, codes) = oracle_codes(&probe);
                            if let Some(&q) = qs.first() {
                                let input = Input::U8(codes, q);
                                v.push(base(input, Output::F32, act, reduce, true, "u8 in"));
                            }
                        }
                    }
                }
            }
        }
        v.extend(extreme_cases(rng));
        v
    }

    fn describe(c: &Int8Case) -> String {
        format!(
            "m={} k={} n={} pc={} {:?} rr={} {:?} relu={} {}",
            c.m, c.k, c.n, c.per_channel, c.act, c.reduce, c.output, c.relu, c.what
        )
    }

    fn reference(c: &Int8Case) -> Vec<u32> {
        let lin = c.layer();
        let (qs, codes) = oracle_codes(c);
        let acc = oracle_acc(&lin, &codes, c.m);
        let w = lin.int8_weights().unwrap();
        let n = c.n;
        acc.iter()
            .enumerate()
            .map(|(i, &a)| {
                let (r, j) = (i / n, i % n);
                let y = |relu| {
                    let (cs, ws) = (w.col_sums()[j], w.scales()[j]);
                    scalar::dequantize(a, qs[r], cs, ws, lin.bias()[j], relu)
                };
                match c.output {
                    Output::Raw => a as u32,
                    Output::F32 => y(c.relu).to_bits(),
                    Output::U8(q) => u32::from(scalar::requantize(y(false), q, c.relu)),
                }
            })
            .collect()
    }

    fn run(index: usize, c: &Int8Case) -> Vec<u32> {
        let lin = c.layer();
        let kernel = Int8Kernel::ALL[index];
        let inp = match &c.input {
            Input::F32(x) => Int8Input::F32(x),
            Input::U8(a, q) => Int8Input::U8(a, *q),
        };
        let mut s = LinearScratch::default();
        let len = c.m * c.n;
        match c.output {
            Output::Raw => {
                let mut got = vec![0i32; len];
                let o = Int8Output::RawI32(&mut got);
                lin.forward_int8(kernel, inp, c.m, o, c.relu, &mut s)
                    .unwrap();
                got.iter().map(|&v| v as u32).collect()
            }
            Output::F32 => {
                let mut got = vec![f32::NAN; len];
                let o = Int8Output::F32(&mut got);
                lin.forward_int8(kernel, inp, c.m, o, c.relu, &mut s)
                    .unwrap();
                got.iter().map(|v| v.to_bits()).collect()
            }
            Output::U8(q) => {
                let mut got = vec![0u8; len];
                let o = Int8Output::U8(&mut got, q);
                lin.forward_int8(kernel, inp, c.m, o, c.relu, &mut s)
                    .unwrap();
                got.iter().map(|&v| u32::from(v)).collect()
            }
        }
    }
}

impl RowWise for Int8Suite {
    /// Static and per-row dynamic activations, and u8 input. Per-tensor `Dynamic` is left out on
    /// purpose: its scale and zero point come from the whole batch (PyTorch's semantics), see
    /// `per_tensor_dynamic_depends_on_the_batch_per_row_does_not`.
    fn row_cases(rng: &mut Rng) -> Vec<Int8Case> {
        let static_q = QParams {
            scale: 0.03,
            zero_point: 90,
        };
        let mut v = Vec::new();
        for (k, n) in [(13, 20), (479, 40), (1024, 33)] {
            let (w, b, _) = layer(rng, n, k, spec(true, ActivationQuant::Dynamic));
            let x: Vec<f32> = (0..300 * k)
                .map(|i| rng.normal() as f32 * (1.0 + (i / k % 7) as f32))
                .collect();
            let a = u8_vec(rng, 300 * k);
            for (act, input, output) in [
                (
                    ActivationQuant::DynamicPerRow,
                    Input::F32(x.clone()),
                    Output::F32,
                ),
                (
                    ActivationQuant::DynamicPerRow,
                    Input::F32(x.clone()),
                    Output::U8(static_q),
                ),
                (
                    ActivationQuant::Static(static_q),
                    Input::F32(x.clone()),
                    Output::F32,
                ),
                (
                    ActivationQuant::Dynamic,
                    Input::U8(a.clone(), static_q),
                    Output::Raw,
                ),
                (
                    ActivationQuant::Dynamic,
                    Input::U8(a.clone(), static_q),
                    Output::F32,
                ),
            ] {
                v.push(Int8Case {
                    m: 300,
                    k,
                    n,
                    w: w.clone(),
                    b: b.clone(),
                    per_channel: true,
                    act,
                    reduce: false,
                    input,
                    output,
                    relu: false,
                    what: "rows",
                });
            }
        }
        v
    }

    fn rows(c: &Int8Case) -> usize {
        c.m
    }

    fn take_rows(c: &Int8Case, start: usize, len: usize) -> Int8Case {
        let r = start * c.k..(start + len) * c.k;
        Int8Case {
            m: len,
            k: c.k,
            n: c.n,
            w: c.w.clone(),
            b: c.b.clone(),
            per_channel: c.per_channel,
            act: c.act,
            reduce: c.reduce,
            input: match &c.input {
                Input::F32(x) => Input::F32(x[r].to_vec()),
                Input::U8(a, q) => Input::U8(a[r].to_vec(), *q),
            },
            output: c.output,
            relu: c.relu,
            what: c.what,
        }
    }

    fn row_len(c: &Int8Case) -> usize {
        c.n
    }
}

kernel_suite!(int8_layers: Int8Suite, rows);

/// Extreme data: the worst case for 16-bit pair sums (activations 255 against weights −128 and
/// 127), all-equal and all-zero activations, a huge range, zero weights.
fn extreme_cases(rng: &mut Rng) -> Vec<Int8Case> {
    let (m, k, n) = (5, 67, 20);
    let mut w = vec![0f32; n * k];
    for (i, v) in w.iter_mut().enumerate() {
        *v = if i % 3 == 0 { 2.55 } else { -2.55 };
    }
    let cases: Vec<(&'static str, Vec<f32>, Vec<f32>)> = vec![
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
    let mut v = Vec::new();
    for (what, w, x) in cases {
        for per_channel in [false, true] {
            for act in [ActivationQuant::Dynamic, ActivationQuant::DynamicPerRow] {
                for output in [Output::Raw, Output::F32] {
                    let c = Int8Case {
                        m,
                        k,
                        n,
                        w: w.clone(),
                        b: vec![0.0; n],
                        per_channel,
                        act,
                        reduce: false,
                        input: Input::F32(x.clone()),
                        output,
                        relu: false,
                        what,
                    };
                    if what == "saturation" {
                        let codes = c.layer().int8_weights().unwrap().codes();
                        assert!(codes.contains(&-128) && codes.contains(&127));
                        let (_, a) = oracle_codes(&c);
                        assert!(a.iter().filter(|&&q| q == 255).count() > m * k / 2);
                    }
                    v.push(c);
                }
            }
        }
    }
    v
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
