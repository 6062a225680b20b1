//! Embedding bags at every implementation this CPU runs, against the scalar oracle (through
//! [`kernel_suite!`], with the row-independence property over bags): random tables in every
//! format, awkward dimensions and bag shapes, both id types, every bag encoding, every pooling mode,
//! pruning remaps, extreme rows and ids; plus the typed errors for bad ids, bags, weights and outputs.
//!
//! Every level uses the oracle's operation order (FBGEMM's), so results must match bit for bit.

use half::{bf16, f16};
use quantrec_kernels::embedding_bag::{
    Bags, EmbeddingBag, EmbeddingBagFamily, Indices, Lookup, Parallelism, Pooling, TableBag,
    pool_scalar, pool_tables_with_isa, pool_with_isa, pool_with_ops,
};
use quantrec_kernels::formats::{TableFormat, TableRef};
use quantrec_kernels::registry::KernelFamily;
use quantrec_kernels::rng::Rng;
use quantrec_kernels::testing::{OracleSuite, RowWise};
use quantrec_kernels::{Isa, KernelError, kernel_suite};

/// Output sentinel: any float a kernel fails to write (or writes where it must not) shows up.
const SENTINEL: f32 = -12345.678;

/// Random table bytes: finite values for float formats, random codes (padding bits included) and
/// random scale/bias for fused formats.
fn random_table(format: TableFormat, rows: usize, dim: usize, rng: &mut Rng) -> Vec<u8> {
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

/// Dimensions to test for a format (the fused sub-byte formats need even / multiple-of-4 rows).
fn dims(format: TableFormat) -> Vec<usize> {
    match format {
        TableFormat::Fused4 => vec![2, 6, 16, 18, 32, 62, 64, 128, 130, 1000],
        TableFormat::Fused2 => vec![4, 12, 16, 20, 36, 60, 64, 128, 132, 1000],
        _ => vec![1, 2, 3, 7, 16, 17, 32, 63, 64, 128, 1000],
    }
}

/// How bag boundaries are handed to the kernel.
#[derive(Clone, Copy, Debug)]
enum Encoding {
    Offsets,
    OffsetsTrailing,
    Lengths,
}

/// One lookup in owned form, convertible to either id type and any encoding.
#[derive(Clone)]
struct Case {
    ids: Vec<i64>,
    lengths: Vec<usize>,
    weights: Vec<f32>,
}

impl Case {
    fn new(lengths: Vec<usize>, id_limit: usize, rng: &mut Rng) -> Case {
        let n: usize = lengths.iter().sum();
        let ids = (0..n).map(|_| rng.below(id_limit as u64) as i64).collect();
        let weights = (0..n).map(|_| rng.uniform_f32(-1.5, 1.5)).collect();
        Case {
            ids,
            lengths,
            weights,
        }
    }

    fn bounds(&self, enc: Encoding) -> Vec<i64> {
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
struct Owned {
    ids64: Vec<i64>,
    ids32: Vec<i32>,
    b64: Vec<i64>,
    b32: Vec<i32>,
}

impl Owned {
    fn new(case: &Case, enc: Encoding) -> Owned {
        let b64 = case.bounds(enc);
        Owned {
            ids32: case.ids.iter().map(|&i| i as i32).collect(),
            b32: b64.iter().map(|&i| i as i32).collect(),
            ids64: case.ids.clone(),
            b64,
        }
    }

    fn lookup<'a>(&'a self, case: &'a Case, enc: Encoding, wide: bool) -> Lookup<'a> {
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

/// One pooling call in owned form: a table, its bags, encoding, id type, pooling and remap.
struct Pool {
    format: TableFormat,
    rows: usize,
    dim: usize,
    data: std::rc::Rc<Vec<u8>>,
    case: Case,
    enc: Encoding,
    wide: bool,
    pooling: Pooling,
    remap: Option<std::rc::Rc<Vec<i32>>>,
    what: String,
}

impl Pool {
    /// Output floats between bags (three more than `dim`, so stray writes hit the sentinel).
    fn stride(&self) -> usize {
        self.dim + 3
    }

    /// Runs `f` on the call's bag and lookup.
    fn with<T>(&self, f: impl FnOnce(&EmbeddingBag<'_>, &Lookup<'_>) -> T) -> T {
        let table = TableRef::new(self.format, self.rows, self.dim, &self.data).unwrap();
        let owned = Owned::new(&self.case, self.enc);
        let lookup = owned.lookup(&self.case, self.enc, self.wide);
        let bag = EmbeddingBag {
            table,
            pooling: self.pooling,
            remap: self.remap.as_deref().map(Vec::as_slice),
        };
        f(&bag, &lookup)
    }
}

/// Embedding bags at every implementation against [`pool_scalar`], bit for bit, through the
/// single-table API and the batched one (one thread and rayon).
struct BagSuite;

impl OracleSuite for BagSuite {
    type Family = EmbeddingBagFamily;
    type Case = Pool;
    type Elem = f32;

    fn cases(rng: &mut Rng) -> Vec<Pool> {
        let mut v = Vec::new();
        let encodings = [
            Encoding::Offsets,
            Encoding::OffsetsTrailing,
            Encoding::Lengths,
        ];
        let poolings = [Pooling::Sum, Pooling::Mean, Pooling::WeightedSum];
        // Every format, awkward dims and bag shapes, every encoding, both id types.
        let rows = 97;
        for format in TableFormat::ALL {
            for dim in dims(format) {
                let data = std::rc::Rc::new(random_table(format, rows, dim, rng));
                for (p, lengths) in length_patterns(rng).into_iter().enumerate() {
                    // Keep the suite short: large dims get the small patterns only.
                    if dim >= 1000 && p == 5 {
                        continue;
                    }
                    let case = Case::new(lengths, rows, rng);
                    for (e, enc) in encodings.into_iter().enumerate() {
                        for wide in [false, true] {
                            v.push(Pool {
                                format,
                                rows,
                                dim,
                                data: data.clone(),
                                case: case.clone(),
                                enc,
                                wide,
                                pooling: poolings[(p + e) % 3],
                                remap: None,
                                what: format!("pattern {p}"),
                            });
                        }
                    }
                }
            }
        }
        // Every pooling mode on the common dims, longer random bags.
        let rows = 500;
        for format in TableFormat::ALL {
            for dim in [16, 32, 64, 128] {
                let data = std::rc::Rc::new(random_table(format, rows, dim, rng));
                let lengths = (0..64).map(|_| rng.below(30) as usize).collect();
                let case = Case::new(lengths, rows, rng);
                for pooling in poolings {
                    v.push(Pool {
                        format,
                        rows,
                        dim,
                        data: data.clone(),
                        case: case.clone(),
                        enc: Encoding::Offsets,
                        wide: true,
                        pooling,
                        remap: None,
                        what: "common dims".into(),
                    });
                }
            }
        }
        // Pruned tables: every third original id is pruned, the rest map to a scrambled row.
        let (rows, original) = (40, 120);
        let remap = std::rc::Rc::new(
            (0..original)
                .map(|i| {
                    if i % 3 == 0 {
                        -1
                    } else {
                        ((i * 7) % rows) as i32
                    }
                })
                .collect::<Vec<i32>>(),
        );
        for format in TableFormat::ALL {
            for dim in [4, 16, 64, 1000] {
                let data = std::rc::Rc::new(random_table(format, rows, dim, rng));
                let case = Case::new(vec![0, 5, 1, 17, 3, 0, 60], original, rng);
                for pooling in poolings {
                    v.push(Pool {
                        format,
                        rows,
                        dim,
                        data: data.clone(),
                        case: case.clone(),
                        enc: Encoding::OffsetsTrailing,
                        wide: false,
                        pooling,
                        remap: Some(remap.clone()),
                        what: "pruned".into(),
                    });
                }
            }
        }
        // Extremes: the largest id everywhere, all-equal rows of all-ones bytes (code 255 / 15 / 3,
        // the largest scale and bias bit patterns that stay finite), and a row of huge values.
        for format in TableFormat::ALL {
            for dim in [4, 64, 68, 132] {
                let rows = 33;
                let mut data = random_table(format, rows, dim, rng);
                let rb = format.row_bytes(dim);
                for r in 0..rows {
                    let row = &mut data[r * rb..(r + 1) * rb];
                    match format {
                        TableFormat::F32 => {
                            for (i, c) in row.chunks_exact_mut(4).enumerate() {
                                let v = if i % 2 == 0 { 1e30f32 } else { -3e29 };
                                c.copy_from_slice(&v.to_le_bytes());
                            }
                        }
                        TableFormat::F16 | TableFormat::Bf16 => row.fill(0x7b),
                        _ => row[..format.code_bytes(dim)].fill(0xff),
                    }
                }
                let mut case = Case::new(vec![1, 0, 7, 25], rows, rng);
                case.ids.iter_mut().for_each(|id| *id = rows as i64 - 1);
                for pooling in poolings {
                    v.push(Pool {
                        format,
                        rows,
                        dim,
                        data: std::rc::Rc::new(data.clone()),
                        case: case.clone(),
                        enc: Encoding::Lengths,
                        wide: true,
                        pooling,
                        remap: None,
                        what: "extremes".into(),
                    });
                }
            }
        }
        v
    }

    fn describe(c: &Pool) -> String {
        format!(
            "{} d={} {} {:?} {:?} wide={} bags={}",
            c.format,
            c.dim,
            c.what,
            c.enc,
            c.pooling,
            c.wide,
            c.case.lengths.len()
        )
    }

    fn reference(c: &Pool) -> Vec<f32> {
        let mut want = vec![SENTINEL; c.case.lengths.len() * c.stride()];
        c.with(|bag, lookup| pool_scalar(bag, lookup, 0, &mut want, c.stride()))
            .unwrap();
        want
    }

    fn run(index: usize, c: &Pool) -> Vec<f32> {
        let stride = c.stride();
        let len = c.case.lengths.len() * stride;
        let ops = EmbeddingBagFamily::get(index).unwrap();
        let isa = EmbeddingBagFamily::IMPLEMENTATIONS[index].isa;
        c.with(|bag, lookup| {
            let mut got = vec![SENTINEL; len];
            pool_with_ops(ops, bag, lookup, 0, &mut got, stride).unwrap();
            // The batched API (one table) must write exactly the same, on one thread or many.
            for par in [Parallelism::Single, Parallelism::Auto] {
                let mut batched = vec![SENTINEL; len];
                let tables = [TableBag {
                    bag: *bag,
                    lookup: *lookup,
                    column: 0,
                }];
                pool_tables_with_isa(isa, &tables, &mut batched, stride, par).unwrap();
                assert_same(&got, &batched, stride, &format!("batched {par:?} at {isa}"));
            }
            got
        })
    }
}

impl RowWise for BagSuite {
    fn row_cases(rng: &mut Rng) -> Vec<Pool> {
        let rows = 1000;
        let mut v = Vec::new();
        for format in TableFormat::ALL {
            for dim in [16, 36, 132] {
                let data = std::rc::Rc::new(random_table(format, rows, dim, rng));
                let lengths = (0..300).map(|_| rng.below(24) as usize).collect();
                let case = Case::new(lengths, rows, rng);
                v.push(Pool {
                    format,
                    rows,
                    dim,
                    data,
                    case,
                    enc: Encoding::Lengths,
                    wide: false,
                    pooling: Pooling::WeightedSum,
                    remap: None,
                    what: "rows".into(),
                });
            }
        }
        v
    }

    fn rows(c: &Pool) -> usize {
        c.case.lengths.len()
    }

    fn take_rows(c: &Pool, start: usize, len: usize) -> Pool {
        let first: usize = c.case.lengths[..start].iter().sum();
        let lengths = c.case.lengths[start..start + len].to_vec();
        let count: usize = lengths.iter().sum();
        Pool {
            case: Case {
                ids: c.case.ids[first..first + count].to_vec(),
                weights: c.case.weights[first..first + count].to_vec(),
                lengths,
            },
            data: c.data.clone(),
            remap: c.remap.clone(),
            what: c.what.clone(),
            ..*c
        }
    }

    fn row_len(c: &Pool) -> usize {
        c.stride()
    }
}

kernel_suite!(bags: BagSuite, rows);

fn assert_same(want: &[f32], got: &[f32], stride: usize, what: &str) {
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        assert!(
            w.to_bits() == g.to_bits(),
            "{what}: bag {} column {}: oracle {w:e}, kernel {g:e}",
            i / stride,
            i % stride
        );
    }
}

/// Bag-length patterns: none, empty bags, short random bags, one huge bag.
fn length_patterns(rng: &mut Rng) -> Vec<Vec<usize>> {
    vec![
        vec![],
        vec![0, 0, 0],
        vec![1],
        (0..9).map(|_| rng.below(6) as usize).collect(),
        vec![0, 3, 0, 1, 40, 0],
        vec![3000],
    ]
}

#[test]
fn pruned_tables_skip_minus_one_and_mean_counts_pruned_ids() {
    let mut rng = Rng::new(13);
    let rows = 40;
    let remap: Vec<i32> = (0..120)
        .map(|i| {
            if i % 3 == 0 {
                -1
            } else {
                ((i * 7) % rows) as i32
            }
        })
        .collect();
    // A bag of only pruned ids is zero; its mean divides by all its ids (FBGEMM's rule).
    let data = random_table(TableFormat::F32, rows, 4, &mut rng);
    let table = TableRef::new(TableFormat::F32, rows, 4, &data).unwrap();
    let ids = [0i64, 3, 1];
    let lookup = Lookup {
        indices: Indices::I64(&ids),
        bags: Bags::Offsets(Indices::I64(&[0, 2])),
        num_bags: 2,
        per_sample_weights: None,
    };
    let bag = EmbeddingBag {
        table,
        pooling: Pooling::Mean,
        remap: Some(&remap),
    };
    for isa in Isa::available() {
        let mut out = vec![SENTINEL; 8];
        pool_with_isa(isa, &bag, &lookup, 0, &mut out, 4).unwrap();
        assert_eq!(&out[..4], &[0.0; 4], "{isa}");
        let row = (7 % rows) * 16;
        let v0 = f32::from_le_bytes(data[row..row + 4].try_into().unwrap());
        assert_eq!(out[4], v0, "{isa}: a one-id bag's mean is the row");
    }
}

#[test]
fn batched_tables_fill_their_columns_at_every_isa() {
    let mut rng = Rng::new(14);
    let batch = 700;
    let specs = [
        (TableFormat::Fused4, 64, 300),
        (TableFormat::F32, 17, 50),
        (TableFormat::Fused8, 128, 1000),
        (TableFormat::Bf16, 3, 20),
        (TableFormat::Fused2, 16, 5000),
        (TableFormat::F16, 32, 64),
        (TableFormat::Fused8Half, 7, 9),
    ];
    let datas: Vec<Vec<u8>> = specs
        .iter()
        .map(|&(f, d, r)| random_table(f, r, d, &mut rng))
        .collect();
    let cases: Vec<Case> = specs
        .iter()
        .map(|&(_, _, r)| {
            let lengths = (0..batch).map(|_| rng.below(40) as usize).collect();
            Case::new(lengths, r, &mut rng)
        })
        .collect();
    let owned: Vec<Owned> = cases
        .iter()
        .map(|c| Owned::new(c, Encoding::Lengths))
        .collect();
    let poolings = [Pooling::Sum, Pooling::Mean, Pooling::WeightedSum];
    let mut tables = Vec::new();
    // Columns in a scrambled order with a gap, to check the column offsets.
    let mut column = 5;
    for (t, &(f, d, r)) in specs.iter().enumerate().rev() {
        tables.push(TableBag {
            bag: EmbeddingBag {
                table: TableRef::new(f, r, d, &datas[t]).unwrap(),
                pooling: poolings[t % 3],
                remap: None,
            },
            lookup: owned[t].lookup(&cases[t], Encoding::Lengths, t % 2 == 0),
            column,
        });
        column += d;
    }
    let stride = column + 2;
    let mut want = vec![SENTINEL; batch * stride];
    for (t, tb) in tables.iter().enumerate() {
        pool_scalar(&tb.bag, &tb.lookup, t, &mut want[tb.column..], stride).unwrap();
    }
    for isa in Isa::available() {
        for par in [Parallelism::Single, Parallelism::Auto] {
            let mut got = vec![SENTINEL; batch * stride];
            pool_tables_with_isa(isa, &tables, &mut got, stride, par).unwrap();
            assert_same(&want, &got, stride, &format!("batched {par:?} at {isa}"));
        }
    }
}

// ---- errors ----

fn f32_table(rows: usize, dim: usize) -> Vec<u8> {
    random_table(TableFormat::F32, rows, dim, &mut Rng::new(99))
}

/// Runs a call at every level and the oracle, and demands the same error from all.
fn expect_error(
    bag: &EmbeddingBag<'_>,
    lookup: &Lookup<'_>,
    out_len: usize,
    stride: usize,
) -> KernelError {
    let mut out = vec![0f32; out_len];
    let want =
        pool_scalar(bag, lookup, 3, &mut out, stride).expect_err("oracle accepted bad input");
    for isa in Isa::available() {
        let got = pool_with_isa(isa, bag, lookup, 3, &mut out, stride)
            .expect_err("kernel accepted bad input");
        assert_eq!(got, want, "{isa}");
    }
    want
}

fn simple<'a>(ids: &'a [i64], offsets: &'a [i64]) -> Lookup<'a> {
    Lookup {
        indices: Indices::I64(ids),
        bags: Bags::Offsets(Indices::I64(offsets)),
        num_bags: offsets.len(),
        per_sample_weights: None,
    }
}

#[test]
fn bad_ids_name_table_bag_and_id() {
    let data = f32_table(10, 16);
    let table = TableRef::new(TableFormat::F32, 10, 16, &data).unwrap();
    let bag = EmbeddingBag {
        table,
        pooling: Pooling::Sum,
        remap: None,
    };
    for (bad, bag_index) in [(-1i64, 1usize), (10, 2), (i64::MAX, 0), (i64::MIN, 2)] {
        let mut ids = vec![1i64, 2, 3, 4, 5, 6];
        let pos = match bag_index {
            0 => 1,
            1 => 3,
            _ => 5,
        };
        ids[pos] = bad;
        let offsets = [0i64, 2, 4];
        let err = expect_error(&bag, &simple(&ids, &offsets), 48, 16);
        assert_eq!(
            err,
            KernelError::IdOutOfRange {
                table: 3,
                bag: bag_index,
                id: bad,
                rows: 10
            }
        );
    }
    // i32 ids too.
    let ids = [0i32, 9, -7];
    let lookup = Lookup {
        indices: Indices::I32(&ids),
        bags: Bags::Lengths(Indices::I32(&[2, 1])),
        num_bags: 2,
        per_sample_weights: None,
    };
    let err = expect_error(&bag, &lookup, 32, 16);
    assert!(
        matches!(err, KernelError::IdOutOfRange { bag: 1, id: -7, .. }),
        "{err}"
    );
}

#[test]
fn bad_remaps_are_errors() {
    let data = f32_table(4, 8);
    let table = TableRef::new(TableFormat::F32, 4, 8, &data).unwrap();
    let remap = [0i32, -1, 3, 4, -2];
    let bag = EmbeddingBag {
        table,
        pooling: Pooling::Mean,
        remap: Some(&remap),
    };
    let offsets = [0i64, 2];
    // Past the remap.
    let err = expect_error(&bag, &simple(&[0, 1, 2, 5], &offsets), 16, 8);
    assert_eq!(
        err,
        KernelError::IdOutOfRange {
            table: 3,
            bag: 1,
            id: 5,
            rows: 5
        }
    );
    // Remapped past the table, and a negative remap value other than -1.
    let err = expect_error(&bag, &simple(&[3, 1, 2, 0], &offsets), 16, 8);
    assert_eq!(
        err,
        KernelError::IdOutOfRange {
            table: 3,
            bag: 0,
            id: 4,
            rows: 4
        }
    );
    let err = expect_error(&bag, &simple(&[1, 2, 4], &offsets), 16, 8);
    assert!(
        matches!(err, KernelError::IdOutOfRange { bag: 1, id: -2, .. }),
        "{err}"
    );
}

#[test]
fn bad_bags_weights_outputs_and_tables_are_errors() {
    let data = f32_table(10, 4);
    let table = TableRef::new(TableFormat::F32, 10, 4, &data).unwrap();
    let bag = EmbeddingBag {
        table,
        pooling: Pooling::Sum,
        remap: None,
    };
    let ids = [1i64, 2, 3, 4];
    let bad_offsets: [&[i64]; 4] = [&[0, 3, 2], &[1, 2, 3], &[0, 2, 5], &[0, 5]];
    for offsets in bad_offsets {
        let err = expect_error(&bag, &simple(&ids, offsets), 64, 4);
        assert!(
            matches!(err, KernelError::BadBags { table: 3, .. }),
            "{offsets:?}: {err}"
        );
    }
    // Trailing offset that does not equal the id count; too many offsets.
    let lookup = Lookup {
        num_bags: 2,
        ..simple(&ids, &[0, 2, 3])
    };
    assert!(matches!(
        expect_error(&bag, &lookup, 64, 4),
        KernelError::BadBags { .. }
    ));
    let lookup = Lookup {
        num_bags: 1,
        ..simple(&ids, &[0, 2, 4])
    };
    assert!(matches!(
        expect_error(&bag, &lookup, 64, 4),
        KernelError::BadBags { .. }
    ));
    // Lengths: negative, wrong sum, a sum that would wrap around to the id count.
    for lengths in [[2i64, -1, 3], [1, 1, 1], [i64::MAX, i64::MAX, 6]] {
        let lookup = Lookup {
            indices: Indices::I64(&ids),
            bags: Bags::Lengths(Indices::I64(&lengths)),
            num_bags: 3,
            per_sample_weights: None,
        };
        assert!(matches!(
            expect_error(&bag, &lookup, 64, 4),
            KernelError::BadBags { .. }
        ));
    }
    // Weighted pooling without weights, or with the wrong number.
    let wbag = EmbeddingBag {
        pooling: Pooling::WeightedSum,
        ..bag
    };
    assert!(matches!(
        expect_error(&wbag, &simple(&ids, &[0, 2]), 64, 4),
        KernelError::BadBags { .. }
    ));
    let w = [1.0f32; 3];
    let lookup = Lookup {
        per_sample_weights: Some(&w),
        ..simple(&ids, &[0, 2])
    };
    assert!(matches!(
        expect_error(&wbag, &lookup, 64, 4),
        KernelError::Shape {
            expected: 4,
            found: 3,
            ..
        }
    ));
    // Output too short, stride below the dimension.
    assert!(matches!(
        expect_error(&bag, &simple(&ids, &[0, 2]), 7, 4),
        KernelError::Shape {
            expected: 8,
            found: 7,
            ..
        }
    ));
    assert!(matches!(
        expect_error(&bag, &simple(&ids, &[0, 2]), 64, 3),
        KernelError::Shape { .. }
    ));
    // A table whose bytes do not cover its rows (built without TableRef::new).
    let short = TableRef {
        data: &data[..data.len() - 1],
        ..table
    };
    let sbag = EmbeddingBag {
        table: short,
        ..bag
    };
    assert!(matches!(
        expect_error(&sbag, &simple(&ids, &[0, 2]), 64, 4),
        KernelError::Shape { .. }
    ));
    // Asking for a level this CPU lacks is an error, never a crash.
    if Isa::detected() < Isa::Vnni {
        let mut out = vec![0f32; 8];
        assert!(matches!(
            pool_with_isa(Isa::Vnni, &bag, &simple(&ids, &[0, 2]), 0, &mut out, 4),
            Err(KernelError::IsaUnavailable { .. })
        ));
    }
}

#[test]
fn batched_errors_name_the_first_bad_table_and_bag() {
    let mut rng = Rng::new(15);
    let batch = 2000;
    let data = f32_table(50, 8);
    let table = TableRef::new(TableFormat::F32, 50, 8, &data).unwrap();
    let lengths = vec![20usize; batch];
    let mut cases: Vec<Case> = (0..3)
        .map(|_| Case::new(lengths.clone(), 50, &mut rng))
        .collect();
    cases[2].ids[20 * 5 + 3] = 50; // table 2, bag 5
    cases[1].ids[20 * 1500] = -3; // table 1, bag 1500
    cases[1].ids[20 * 1700 + 19] = 77; // table 1, bag 1700 (later)
    let owned: Vec<Owned> = cases
        .iter()
        .map(|c| Owned::new(c, Encoding::Offsets))
        .collect();
    let tables: Vec<TableBag<'_>> = (0..3)
        .map(|t| TableBag {
            bag: EmbeddingBag {
                table,
                pooling: Pooling::Sum,
                remap: None,
            },
            lookup: owned[t].lookup(&cases[t], Encoding::Offsets, true),
            column: 8 * t,
        })
        .collect();
    for isa in Isa::available() {
        for par in [Parallelism::Single, Parallelism::Auto] {
            let mut out = vec![0f32; batch * 24];
            let err = pool_tables_with_isa(isa, &tables, &mut out, 24, par).unwrap_err();
            assert_eq!(
                err,
                KernelError::IdOutOfRange {
                    table: 1,
                    bag: 1500,
                    id: -3,
                    rows: 50
                },
                "{isa} {par:?}"
            );
        }
    }
    // Overlapping columns, columns past the stride, mismatched batch sizes.
    let mut overlap = tables.clone();
    overlap[1].column = 4;
    let mut out = vec![0f32; batch * 24];
    assert!(matches!(
        pool_tables_with_isa(Isa::Scalar, &overlap, &mut out, 24, Parallelism::Single),
        Err(KernelError::Shape { .. })
    ));
    assert!(matches!(
        pool_tables_with_isa(Isa::Scalar, &tables, &mut out, 20, Parallelism::Single),
        Err(KernelError::Shape { .. })
    ));
    let mut uneven = tables.clone();
    let short_offsets = &owned[2].b64[..10];
    uneven[2].lookup = Lookup {
        indices: Indices::I64(&owned[2].ids64[..200]),
        bags: Bags::Offsets(Indices::I64(short_offsets)),
        num_bags: 10,
        per_sample_weights: None,
    };
    assert!(matches!(
        pool_tables_with_isa(Isa::Scalar, &uneven, &mut out, 24, Parallelism::Single),
        Err(KernelError::Shape { .. })
    ));
}

/// Kernels check a bag's ids before reading its rows (one scan per bag without a remap): a bad id
/// in any bag, for every format, narrow and wide rows, stops at that bag with the oracle's error,
/// after writing exactly the oracle's output for the bags before it.
#[test]
fn bad_ids_stop_at_their_bag_after_writing_the_earlier_bags() {
    let mut rng = Rng::new(0xbad1d);
    let rows = 50;
    for format in TableFormat::ALL {
        for dim in [16usize, 64, 128, 260] {
            let data = random_table(format, rows, dim, &mut rng);
            let table = TableRef::new(format, rows, dim, &data).unwrap();
            let bag = EmbeddingBag {
                table,
                pooling: Pooling::Sum,
                remap: None,
            };
            let lengths = [3usize, 0, 40, 1, 7];
            let case = Case::new(lengths.to_vec(), rows, &mut rng);
            for (bad_bag, bad) in [(0usize, rows as i64), (2, -1), (3, i64::MAX), (4, 1 << 40)] {
                let mut ids = case.ids.clone();
                let start: usize = lengths[..bad_bag].iter().sum();
                ids[start + lengths[bad_bag] - 1] = bad;
                let offsets: Vec<i64> = lengths
                    .iter()
                    .scan(0i64, |s, &l| {
                        let o = *s;
                        *s += l as i64;
                        Some(o)
                    })
                    .collect();
                let lookup = simple(&ids, &offsets);
                let mut want = vec![SENTINEL; lengths.len() * dim];
                let want_err = pool_scalar(&bag, &lookup, 3, &mut want, dim).unwrap_err();
                assert!(
                    matches!(want_err, KernelError::IdOutOfRange { bag, .. } if bag == bad_bag),
                    "{want_err}"
                );
                for isa in Isa::available() {
                    let mut got = vec![SENTINEL; lengths.len() * dim];
                    let err = pool_with_isa(isa, &bag, &lookup, 3, &mut got, dim).unwrap_err();
                    let what = format!("{isa} {format:?} d={dim} bad bag {bad_bag}");
                    assert_eq!(err, want_err, "{what}");
                    assert_same(&want[..bad_bag * dim], &got[..bad_bag * dim], dim, &what);
                }
            }
        }
    }
}
