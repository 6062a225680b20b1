//! int8 Linear: every kernel this CPU runs against the scalar oracle through [`kernel_suite!`] (raw
//! i32 accumulators, f32 and u8 epilogues, bit for bit; per-tensor, static and per-row activation
//! parameters), awkward shapes, extreme data and the row-independence property. The documented
//! semantics (PyTorch's recipe, entry points) and the errors are in `gemm_int8_semantics.rs`.

mod int8;

use int8::{layer, spec, u8_vec};
use quantrec_kernels::gemm::int8::{
    Int8Family, Int8Input, Int8Kernel, Int8Output, choose_qparams, scalar,
};
use quantrec_kernels::gemm::{ActivationQuant, LinearScratch, PackedLinear, QParams};
use quantrec_kernels::kernel_suite;
use quantrec_kernels::rng::Rng;
use quantrec_kernels::testing::{OracleSuite, RowWise};

/// Shapes covering m ∈ {0,1,2,15,16,17,255}, k ∈ {1,3,13,64,479,1024}, n ∈ {1,7,16,33,256}, plus
/// the AMX blockings: pairs of 16-row blocks with a single one left over (m = 33, 48), and 1, 2, 3, 4
/// column panels per step for a single row block (n = 20, 40, 100, 256); and the k-blocked AMX path
/// (k beyond 1024, in k-blocks of 512): a last k-block of one step (k = 1025), whole k-blocks
/// (1536), a partial one (1600), with a single row block or panel left over (m = 17, 48, n = 17,
/// 33) and more rows than one pass accumulates (m = 272 = 256 + 16).
const SHAPES: [(usize, usize, usize); 19] = [
    (48, 1025, 33),
    (17, 1536, 17),
    (272, 1600, 20),
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

fn oracle_acc(lin: &PackedLinear, a: &[u8], m: usize) -> Vec<i32> {
    let w = lin.int8_weights().unwrap();
    let mut acc = vec![0i32; m * lin.n()];
    scalar::reference_accumulate(a, m, lin.k(), &w.codes(), lin.n(), &mut acc);
    acc
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
