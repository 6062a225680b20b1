//! The synthetic generator: determinism, independent splits, base CTR, teacher NE, and TSV /
//! batch-file output read back through the ordinary readers.

use std::path::PathBuf;

use quantrec_data::source::read_all;
use quantrec_data::synth::{Generator, Split, SynthConfig, criteo_table_rows, write_tsv_file};
use quantrec_data::{SourceSpec, open_source, write_batch_file};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("quantrec-data-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn small_config(seed: u64) -> SynthConfig {
    SynthConfig {
        seed,
        table_rows: criteo_table_rows(20_000),
        zipf_exponent: 1.05,
        ..SynthConfig::default()
    }
}

#[test]
fn deterministic_per_seed_and_split() {
    let g = Generator::new(small_config(5)).unwrap();
    let g_again = Generator::new(small_config(5)).unwrap();
    let a = read_all(&mut g.stream(Split::Train, 500, 64)).unwrap();
    let b = read_all(&mut g_again.stream(Split::Train, 500, 200)).unwrap();
    assert_eq!(a, b);
    let eval = read_all(&mut g.stream(Split::Evaluation, 500, 64)).unwrap();
    let calib = read_all(&mut g.stream(Split::Calibration, 500, 64)).unwrap();
    assert_ne!(a.dense, eval.dense);
    assert_ne!(eval.dense, calib.dense);
    let other = Generator::new(small_config(6)).unwrap();
    let c = read_all(&mut other.stream(Split::Train, 500, 64)).unwrap();
    assert_ne!(a, c);
    // Shapes: 13 dense, 26 one-hot tables with ids in range.
    assert_eq!((a.size, a.n_dense, a.sparse.len()), (500, 13, 26));
    quantrec_data::batch_ops::validate(&a, &criteo_table_rows(20_000)).unwrap();
}

#[test]
fn base_ctr_and_teacher_ne() {
    let g = Generator::new(small_config(1)).unwrap();
    let mut s = g.stream(Split::Train, 40_000, 4096).with_teacher_auc();
    let all = read_all(&mut s).unwrap();
    let auc = s.teacher().metrics().auc.unwrap();
    assert!(auc > 0.75 && auc < 0.95, "teacher AUC {auc}");
    let t = s.teacher().loss();
    assert_eq!(t.count(), 40_000);
    let ctr = t.ctr().unwrap();
    assert!((ctr - 0.25).abs() < 0.01, "CTR {ctr}");
    let ne = t.ne().unwrap();
    assert!(ne > 0.5 && ne < 0.9, "teacher NE {ne}");
    assert!((t.calibration().unwrap() - 1.0).abs() < 0.04);
    // Labels in the batches are the ones the teacher was scored on.
    let clicks = all.labels.unwrap().iter().filter(|&&y| y == 1.0).count() as u64;
    assert_eq!(clicks, t.positives());
    // Without signal the labels ignore the features: NE ≈ 1.
    let flat = Generator::new(SynthConfig {
        signal: 0.0,
        ..small_config(1)
    })
    .unwrap();
    let mut s = flat.stream(Split::Train, 20_000, 4096);
    read_all(&mut s).unwrap();
    let ne0 = s.teacher().loss().ne().unwrap();
    assert!((ne0 - 1.0).abs() < 0.01, "flat NE {ne0}");
}

#[test]
fn ids_are_heavy_tailed() {
    let g = Generator::new(small_config(2)).unwrap();
    let b = read_all(&mut g.stream(Split::Train, 20_000, 4096)).unwrap();
    // Table 2 has 20,000 rows; Zipf(1.05) puts ~9% of the draws on the top id.
    let ids = &b.sparse[2].ids;
    let mut counts = std::collections::HashMap::new();
    ids.iter()
        .for_each(|&i| *counts.entry(i).or_insert(0usize) += 1);
    let top = *counts.values().max().unwrap() as f64 / ids.len() as f64;
    assert!(top > 0.05 && top < 0.15, "top share {top}");
    assert!(counts.len() > 2_000, "distinct {}", counts.len());
    // Dense counts are heavy tailed and sometimes missing.
    let i5: Vec<f32> = b.dense.iter().skip(4).step_by(13).copied().collect();
    let max = i5.iter().cloned().fold(0.0f32, f32::max);
    assert!(max > 12.0, "max log1p(I5) {max}");
    let zeros_i12 = b
        .dense
        .iter()
        .skip(11)
        .step_by(13)
        .filter(|&&x| x == 0.0)
        .count();
    assert!(zeros_i12 > 20_000 * 7 / 10);
}

#[test]
fn tsv_and_batch_files_read_back_to_the_same_samples() {
    let dir = temp_dir("synth-files");
    for (pf, name) in [(1.0, "one.tsv.gz"), (2.5, "multi.tsv")] {
        let cfg = SynthConfig {
            pooling_factor: pf,
            ..small_config(9)
        };
        let rows = cfg.table_rows.clone();
        let g = Generator::new(cfg).unwrap();
        let expect = read_all(&mut g.stream(Split::Evaluation, 3_000, 512)).unwrap();
        let path = dir.join(name);
        let mut s = g.stream(Split::Evaluation, 3_000, 512);
        assert_eq!(write_tsv_file(&mut s, &path).unwrap(), 3_000);
        let spec = SourceSpec {
            schema: (pf > 1.0).then(|| g.tsv_schema()),
            ..SourceSpec::new(rows.clone(), 1000)
        };
        let back = read_all(open_source(&path, &spec).unwrap().as_mut()).unwrap();
        assert_eq!(back, expect, "pooling factor {pf}");
        if pf > 1.0 {
            let lens = back.sparse[0].ids.len() as f64 / 3_000.0;
            assert!((lens - 2.5).abs() < 0.15, "mean bag size {lens}");
        }
        // The teacher's probability is a function of what the reader sees.
        let mut s = g.stream(Split::Evaluation, 5, 5);
        let probs: Vec<f64> = std::iter::from_fn(|| s.next_row().map(|r| r.prob)).collect();
        for (i, &p) in probs.iter().enumerate() {
            let bags: Vec<&[i64]> = back
                .sparse
                .iter()
                .map(|f| &f.ids[f.offsets[i] as usize..f.offsets[i + 1] as usize])
                .collect();
            let q = g.teacher_probability(&back.dense[i * 13..(i + 1) * 13], &bags);
            assert!((p - q).abs() < 1e-12);
        }
        let bf = dir.join(format!("{name}.safetensors"));
        write_batch_file(&bf, &expect).unwrap();
        let mut src = open_source(&bf, &SourceSpec::new(rows, 1000)).unwrap();
        assert_eq!(src.n_tables(), 26);
        assert_eq!(read_all(src.as_mut()).unwrap(), expect);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn invalid_configs_are_refused() {
    for cfg in [
        SynthConfig {
            target_ctr: 1.0,
            ..SynthConfig::default()
        },
        SynthConfig {
            table_rows: vec![10, 0],
            ..SynthConfig::default()
        },
        SynthConfig {
            pooling_factor: 0.5,
            ..SynthConfig::default()
        },
        SynthConfig {
            latent_dim: 0,
            ..SynthConfig::default()
        },
    ] {
        assert!(matches!(
            Generator::new(cfg),
            Err(quantrec_data::DataError::Config { .. })
        ));
    }
}
