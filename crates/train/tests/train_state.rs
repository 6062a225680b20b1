//! State-dict export and import: round trips, strictness, and PyTorch's own models (the shared
//! fixtures) loaded through `from_state_dict` reproduce PyTorch's outputs.

mod train_util;

use quantrec_data::{Batch, SparseFeature};
use quantrec_model::ModelConfig;
use quantrec_model::config::{DotOrder, Interaction, Naming, PoolingMode};
use quantrec_train::{
    NamedTensor, TrainError, TrainOptions, Trainer, parse_safetensors, read_safetensors,
};
use train_util::{config, dot, random_batch};

fn round_trip(cfg: ModelConfig) {
    let batch = random_batch(&cfg, 300, 3, 8);
    let mut tr = Trainer::new(cfg.clone(), TrainOptions::default()).unwrap();
    for _ in 0..3 {
        tr.train_step(&batch).unwrap();
    }
    let want = tr.predict(&batch).unwrap();
    let bytes = tr.to_safetensors().unwrap();
    let tensors = parse_safetensors(&bytes).unwrap();
    let mut back = Trainer::from_state_dict(cfg.clone(), TrainOptions::default(), tensors).unwrap();
    assert_eq!(back.predict(&batch).unwrap(), want);
    let dir = std::env::temp_dir().join(format!(
        "quantrec-train-{}-{:?}",
        std::process::id(),
        cfg.naming
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    tr.save_safetensors(&path).unwrap();
    let from_file = read_safetensors(&path).unwrap();
    let mut back = Trainer::from_state_dict(cfg, TrainOptions::default(), from_file).unwrap();
    assert_eq!(back.predict(&batch).unwrap(), want);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn export_import_round_trip_gives_identical_predictions() {
    let tables = [
        (30, 4, PoolingMode::Sum),
        (20, 4, PoolingMode::Mean),
        (25, 4, PoolingMode::WeightedSum),
    ];
    round_trip(config(
        5,
        &[8, 4],
        &tables,
        dot(DotOrder::LowerByRow, false),
        &[6, 3, 1],
        Naming::Dlrm,
    ));
    round_trip(config(
        5,
        &[8, 4],
        &tables,
        dot(DotOrder::UpperByRow, true),
        &[6, 1],
        Naming::TorchRec,
    ));
    round_trip(config(
        5,
        &[8, 4],
        &tables,
        Interaction::Dcn { layers: 2, rank: 3 },
        &[6, 1],
        Naming::TorchRec,
    ));
}

#[test]
fn names_follow_the_conventions() {
    let tables = [(30, 4, PoolingMode::Sum), (20, 4, PoolingMode::Sum)];
    let tr = Trainer::new(
        config(
            5,
            &[8, 4],
            &tables,
            dot(DotOrder::LowerByRow, false),
            &[6, 3, 1],
            Naming::Dlrm,
        ),
        TrainOptions::default(),
    )
    .unwrap();
    let names: Vec<(String, Vec<usize>)> = tr
        .state_dict()
        .into_iter()
        .map(|t| (t.name, t.shape))
        .collect();
    let want: Vec<(String, Vec<usize>)> = [
        ("bot_l.0.weight", vec![8, 5]),
        ("bot_l.0.bias", vec![8]),
        ("bot_l.2.weight", vec![4, 8]),
        ("bot_l.2.bias", vec![4]),
        ("top_l.0.weight", vec![6, 7]),
        ("top_l.0.bias", vec![6]),
        ("top_l.2.weight", vec![3, 6]),
        ("top_l.2.bias", vec![3]),
        ("top_l.4.weight", vec![1, 3]),
        ("top_l.4.bias", vec![1]),
        ("emb_l.0.weight", vec![30, 4]),
        ("emb_l.1.weight", vec![20, 4]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(names, want);
}

#[test]
fn initialisation_follows_dlrm() {
    let cfg = config(
        13,
        &[512, 64],
        &[(100_000, 64, PoolingMode::Sum)],
        dot(DotOrder::LowerByRow, false),
        &[256, 1],
        Naming::Dlrm,
    );
    let tr = Trainer::new(cfg, TrainOptions::default()).unwrap();
    let std =
        |v: &[f32]| (v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
    let w = tr.parameter("bot_l.2.weight").unwrap();
    let want = (2.0f64 / (512.0 + 64.0)).sqrt();
    assert!((std(w) / want - 1.0).abs() < 0.03, "{} vs {want}", std(w));
    let b = tr.parameter("bot_l.0.bias").unwrap();
    assert!((std(b) / (1.0f64 / 512.0).sqrt() - 1.0).abs() < 0.1);
    let e = tr.parameter("emb_l.0.weight").unwrap();
    let a = (1.0f32 / 100_000.0).sqrt();
    assert!(e.iter().all(|&x| x.abs() <= a));
    assert!(e.iter().any(|&x| x.abs() > 0.99 * a));
}

#[test]
fn state_dict_import_is_strict() {
    let tables = [(30, 4, PoolingMode::Sum)];
    let cfg = config(
        5,
        &[4],
        &tables,
        dot(DotOrder::LowerByRow, false),
        &[1],
        Naming::Dlrm,
    );
    let tr = Trainer::new(cfg.clone(), TrainOptions::default()).unwrap();
    let sd = tr.state_dict();
    let load =
        |sd: Vec<NamedTensor>| Trainer::from_state_dict(cfg.clone(), TrainOptions::default(), sd);
    let e = load(sd[1..].to_vec()).unwrap_err();
    assert!(
        matches!(e, TrainError::StateDictMissing { ref name, ref shape } if name == "bot_l.0.weight" && shape == &[4, 5]),
        "{e}"
    );
    let mut bad = sd.clone();
    bad[0].shape = vec![5, 4];
    let e = load(bad).unwrap_err();
    assert!(
        matches!(
            e,
            TrainError::StateDictTensor { ref name, ref expected_shape, ref found_shape }
                if name == "bot_l.0.weight" && expected_shape == &[4, 5] && found_shape == &[5, 4]
        ),
        "{e}"
    );
    let mut bad = sd.clone();
    bad[0].shape = vec![4, 4];
    assert!(matches!(
        load(bad),
        Err(TrainError::StateDictValues { values: 20, .. })
    ));
    let mut bad = sd.clone();
    bad.push(NamedTensor {
        name: "emb_l.1.weight".into(),
        shape: vec![1, 4],
        data: vec![0.0; 4],
    });
    let e = load(bad).unwrap_err();
    assert!(
        matches!(e, TrainError::StateDictUnexpected { ref name } if name == "emb_l.1.weight"),
        "{e}"
    );
    let mut bad = sd.clone();
    bad.push(sd[0].clone());
    assert!(matches!(
        load(bad),
        Err(TrainError::StateDictDuplicate { ref name }) if name == &sd[0].name
    ));
    let mut bad = sd;
    bad[2].data[0] = f32::INFINITY;
    assert!(matches!(
        load(bad),
        Err(TrainError::StateDictNonFinite { index: 0, value, .. }) if value == f32::INFINITY
    ));
}

fn fixture_inputs(name: &str, tables: usize) -> (Batch, Vec<f32>) {
    let t = quantrec_testkit::tensors(&quantrec_testkit::fixture(env!("CARGO_MANIFEST_DIR"), name));
    let dense = t["dense"].f32s();
    let size = t["dense"].shape[0];
    let sparse = (0..tables)
        .map(|i| {
            let ids = t[&format!("indices_{i}")].i64s();
            let mut offsets = t[&format!("offsets_{i}")].i64s();
            offsets.push(ids.len() as i64);
            SparseFeature {
                offsets,
                ids,
                weights: None,
            }
        })
        .collect();
    let batch = Batch::unlabeled(size, 13, dense, sparse);
    (batch, t["expected"].f32s())
}

fn pytorch_model(name: &str, interaction: Interaction, naming: Naming, probabilities: bool) {
    let rows = [97, 1000, 500, 31, 2000, 12, 300, 77];
    let tables: Vec<_> = rows.iter().map(|&r| (r, 16, PoolingMode::Sum)).collect();
    let cfg = config(13, &[64, 16], &tables, interaction, &[64, 32, 1], naming);
    let sd = read_safetensors(&quantrec_testkit::fixture(
        env!("CARGO_MANIFEST_DIR"),
        &format!("{name}.safetensors"),
    ))
    .unwrap();
    let mut tr = Trainer::from_state_dict(cfg, TrainOptions::default(), sd).unwrap();
    let (batch, expected) = fixture_inputs(&format!("{name}.inputs.safetensors"), rows.len());
    let got = tr.predict(&batch).unwrap();
    assert_eq!(got.len(), expected.len());
    for (i, (&g, &e)) in got.iter().zip(&expected).enumerate() {
        let g = if probabilities {
            1.0 / (1.0 + (-g).exp())
        } else {
            g
        };
        assert!(
            (g - e).abs() <= 1e-5 + 1e-4 * e.abs(),
            "{name} sample {i}: {g} vs PyTorch {e}"
        );
    }
    // And the export reproduces PyTorch's tensors exactly.
    let again = tr.state_dict();
    let orig = read_safetensors(&quantrec_testkit::fixture(
        env!("CARGO_MANIFEST_DIR"),
        &format!("{name}.safetensors"),
    ))
    .unwrap();
    let mut again: Vec<_> = again
        .into_iter()
        .map(|t| (t.name, t.shape, t.data))
        .collect();
    again.sort_by(|a, b| a.0.cmp(&b.0));
    let orig: Vec<_> = orig
        .into_iter()
        .map(|t| (t.name, t.shape, t.data))
        .collect();
    assert_eq!(again, orig);
}

#[test]
fn loads_pytorch_dlrm_net() {
    pytorch_model(
        "dlrm_dot",
        dot(DotOrder::LowerByRow, false),
        Naming::Dlrm,
        true,
    );
}

#[test]
fn loads_torchrec_dlrm() {
    pytorch_model(
        "torchrec_dlrm",
        dot(DotOrder::UpperByRow, false),
        Naming::TorchRec,
        false,
    );
}

#[test]
fn loads_torchrec_dlrm_dcn() {
    pytorch_model(
        "torchrec_dlrm_dcn",
        Interaction::Dcn { layers: 2, rank: 8 },
        Naming::TorchRec,
        false,
    );
}
