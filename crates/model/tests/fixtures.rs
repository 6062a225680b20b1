//! The three fixture models reproduce PyTorch's outputs to 1e-5 relative.

use quantrec_model::config::{DotOrder, Interaction, Naming};
use quantrec_model::import::{ImportOverrides, import_file};
use quantrec_model::inputs::load_inputs;
use quantrec_model::{Model, Plan, Scratch};

fn fixture(name: &str) -> std::path::PathBuf {
    quantrec_testkit::fixture(env!("CARGO_MANIFEST_DIR"), name)
}

fn load(name: &str) -> Model {
    let imp = import_file(
        &fixture(&format!("{name}.safetensors")),
        &ImportOverrides::default(),
    )
    .unwrap_or_else(|e| panic!("import {name}: {e}"));
    let plan = Plan::f32(&imp.config);
    Model::from_parts(&imp.config, &imp.weights, &plan).unwrap()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-5 * w.abs().max(1e-3);
        assert!((g - w).abs() <= tol, "{what}[{i}]: got {g}, expected {w}");
    }
}

fn logit(p: f32) -> f32 {
    (p as f64 / (1.0 - p as f64)).ln() as f32
}

fn sigmoid(x: f32) -> f32 {
    (1.0 / (1.0 + (-(x as f64)).exp())) as f32
}

#[test]
fn dlrm_dot_probabilities_and_logits() {
    let model = load("dlrm_dot");
    let c = model.config();
    assert_eq!(c.naming, Naming::Dlrm);
    assert_eq!(
        c.interaction,
        Interaction::Dot {
            order: DotOrder::LowerByRow,
            self_interaction: false
        }
    );
    assert_eq!(c.bottom_mlp, vec![64, 16]);
    assert_eq!(c.top_mlp, vec![64, 32, 1]);
    assert_eq!(
        c.tables.iter().map(|t| t.rows).collect::<Vec<_>>(),
        vec![97, 1000, 500, 31, 2000, 12, 300, 77]
    );
    let inp = load_inputs(&fixture("dlrm_dot.inputs.safetensors")).unwrap();
    let want = inp.expected.unwrap();
    let mut s = Scratch::new();
    let p = model.predict(&inp.batch, &mut s).unwrap().to_vec();
    assert_close("probabilities", &p, &want);
    let l = model.predict_logits(&inp.batch, &mut s).unwrap().to_vec();
    let want_l: Vec<f32> = want.iter().map(|&p| logit(p)).collect();
    for (i, (g, w)) in l.iter().zip(&want_l).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * w.abs().max(1.0),
            "logit[{i}]: {g} vs {w}"
        );
    }
}

fn torchrec(name: &str, interaction: Interaction, top: Vec<usize>) {
    let model = load(name);
    let c = model.config();
    assert_eq!(c.naming, Naming::TorchRec);
    assert_eq!(c.interaction, interaction);
    assert_eq!(c.top_mlp, top);
    assert_eq!(model.table_names()[0], "t_cat_0");
    let inp = load_inputs(&fixture(&format!("{name}.inputs.safetensors"))).unwrap();
    let want = inp.expected.unwrap();
    let mut s = Scratch::new();
    let l = model.predict_logits(&inp.batch, &mut s).unwrap().to_vec();
    assert_close("logits", &l, &want);
    let p = model.predict(&inp.batch, &mut s).unwrap().to_vec();
    let want_p: Vec<f32> = want.iter().map(|&x| sigmoid(x)).collect();
    assert_close("probabilities", &p, &want_p);
}

#[test]
fn torchrec_dlrm_logits_and_probabilities() {
    torchrec(
        "torchrec_dlrm",
        Interaction::Dot {
            order: DotOrder::UpperByRow,
            self_interaction: false,
        },
        vec![64, 32, 1],
    );
}

#[test]
fn torchrec_dlrm_dcn_logits_and_probabilities() {
    torchrec(
        "torchrec_dlrm_dcn",
        Interaction::Dcn { layers: 2, rank: 8 },
        vec![64, 32, 1],
    );
}
