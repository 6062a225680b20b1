//! `quantrec eval` and `quantrec predict --data` end to end on generated Criteo-like data, checked
//! against the library computing the same metrics.

use std::path::{Path, PathBuf};

use quantrec_data::metrics::MetricsAccumulator;
use quantrec_data::source::read_all;
use quantrec_data::synth::criteo_table_rows;
use quantrec_data::{SourceSpec, open_source};
use quantrec_model::artifact::{self, Provenance};
use quantrec_model::config::{DotOrder, Interaction, Naming, PoolingMode, TableConfig};
use quantrec_model::plan::ActivationPlan;
use quantrec_model::{LayerPrecision, Model, ModelConfig, Plan, Scratch, Weights};

mod common;
use common::{quantrec, s};

fn config() -> ModelConfig {
    ModelConfig {
        dense_features: 13,
        bottom_mlp: vec![32, 8],
        tables: criteo_table_rows(200)
            .into_iter()
            .map(|rows| TableConfig {
                rows,
                dim: 8,
                pooling: PoolingMode::Sum,
            })
            .collect(),
        interaction: Interaction::Dot {
            order: DotOrder::LowerByRow,
            self_interaction: false,
        },
        top_mlp: vec![16, 1],
        naming: Naming::Dlrm,
    }
}

/// The metrics the library computes for `model` on the first `rows` of `data`, predicted in
/// batches of `bs` (dynamic int8 ranges depend on the batching).
fn library_metrics(
    model: &Path,
    data: &Path,
    rows: usize,
    bs: usize,
) -> (quantrec_data::metrics::Metrics, Vec<f32>) {
    let model = Model::load(model).unwrap();
    let spec = SourceSpec::new(criteo_table_rows(200), 1000);
    let all = read_all(open_source(data, &spec).unwrap().as_mut()).unwrap();
    let mut probs = Vec::new();
    let mut labels = Vec::new();
    for lo in (0..rows).step_by(bs) {
        let batch = quantrec_data::batch_ops::slice(&all, lo, (lo + bs).min(rows));
        probs.extend_from_slice(model.predict(&batch, &mut Scratch::new()).unwrap());
        labels.extend_from_slice(batch.labels.as_ref().unwrap());
    }
    let mut acc = MetricsAccumulator::with_auc();
    acc.extend(&probs, &labels).unwrap();
    (acc.metrics(), probs)
}

#[test]
fn eval_and_predict_on_data_match_the_library() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("quantrec-eval-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("eval.tsv");
    quantrec(&[
        "gen",
        "--rows",
        "3000",
        "--seed",
        "5",
        "--max-table-rows",
        "200",
        "-o",
        s(&data),
    ]);
    let cfg = config();
    let weights = Weights::random(&cfg, 3);
    let f32_path = dir.join("f32.safetensors");
    let int8_path = dir.join("int8.safetensors");
    artifact::save(
        &f32_path,
        &cfg,
        &weights,
        &Plan::f32(&cfg),
        &Provenance::default(),
    )
    .unwrap();
    let int8 = Plan::uniform(
        &cfg,
        LayerPrecision::Int8 {
            per_channel: true,
            activations: ActivationPlan::Dynamic,
        },
        quantrec_kernels::formats::TableFormat::Fused8,
    );
    artifact::save(&int8_path, &cfg, &weights, &int8, &Provenance::default()).unwrap();

    // Batches of 700 do not divide 2500: the last batch is cut by --rows.
    let eval = |model: &Path, extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "eval",
            s(model),
            "--data",
            s(&data),
            "--rows",
            "2500",
            "--batch-size",
            "700",
            "--json",
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(&quantrec(&args)).unwrap()
    };
    let f = eval(&f32_path, &[]);
    let (want_f, _) = library_metrics(&f32_path, &data, 2500, 700);
    assert_eq!(f["metrics"]["count"], 2500);
    let close = |got: &serde_json::Value, want: Option<f64>, what: &str| {
        let (g, w) = (got.as_f64().unwrap(), want.unwrap());
        assert!(
            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
            "{what}: {g} vs {w}"
        );
    };
    close(&f["metrics"]["ne"], want_f.ne, "f32 NE");
    close(&f["metrics"]["log_loss"], want_f.log_loss, "f32 log loss");
    close(&f["metrics"]["auc"], want_f.auc, "f32 AUC");
    close(
        &f["metrics"]["calibration"],
        want_f.calibration,
        "f32 calibration",
    );
    assert!(f["baseline"].is_null());

    let q = eval(&int8_path, &["--baseline", s(&f32_path)]);
    let (want_q, _) = library_metrics(&int8_path, &data, 2500, 700);
    close(&q["metrics"]["ne"], want_q.ne, "int8 NE");
    close(&q["metrics"]["auc"], want_q.auc, "int8 AUC");
    close(&q["baseline"]["metrics"]["ne"], want_f.ne, "baseline NE");
    let d_ne = 100.0 * (want_q.ne.unwrap() - want_f.ne.unwrap()) / want_f.ne.unwrap();
    close(&q["delta_ne_percent"], Some(d_ne), "ΔNE %");
    close(
        &q["delta_auc"],
        Some(want_q.auc.unwrap() - want_f.auc.unwrap()),
        "ΔAUC",
    );
    let text = quantrec(&[
        "eval",
        s(&int8_path),
        "--data",
        s(&data),
        "--baseline",
        s(&f32_path),
    ]);
    assert!(text.contains("3000 rows") && text.contains("ΔNE"), "{text}");

    // predict --data: the first 123 rows, probabilities as the library computes them, labels kept.
    let out = dir.join("pred.tsv");
    quantrec(&[
        "predict",
        s(&int8_path),
        "--data",
        s(&data),
        "--rows",
        "123",
        "--batch-size",
        "50",
        "-o",
        s(&out),
    ]);
    let (_, probs) = library_metrics(&int8_path, &data, 123, 50);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("probability\tlogit\tlabel"));
    let got: Vec<(f32, f32)> = lines
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c[0].parse().unwrap(), c[2].parse().unwrap())
        })
        .collect();
    assert_eq!(got.len(), 123);
    for (i, ((p, y), w)) in got.iter().zip(&probs).enumerate() {
        assert_eq!(p, w, "row {i}");
        assert!(*y == 0.0 || *y == 1.0);
    }
    std::fs::remove_dir_all(dir).unwrap();
}
