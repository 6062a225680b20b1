//! Import: architecture inference, refusals naming the tensor, export round trips.

mod common;

use common::{fixture, import};
use quantrec_model::config::{
    DotOrder, Interaction, ModelConfig, Naming, PoolingMode, TableConfig,
};
use quantrec_model::export::export_state_dict;
use quantrec_model::import::{ImportOverrides, import_state_dict};
use quantrec_model::state_dict::{StateDict, Tensor};
use quantrec_model::{ModelError, Weights};

fn state_dict(name: &str) -> StateDict {
    StateDict::load(&fixture(&format!("{name}.safetensors"))).unwrap()
}

fn import_err(sd: StateDict) -> ModelError {
    import_state_dict(sd, &ImportOverrides::default()).unwrap_err()
}

#[test]
fn missing_tensors_are_named() {
    let mut sd = state_dict("dlrm_dot");
    sd.tensors.remove("bot_l.0.bias");
    match import_err(sd) {
        ModelError::MissingTensor { name, .. } => assert_eq!(name, "bot_l.0.bias"),
        e => panic!("{e}"),
    }
    let mut sd = state_dict("dlrm_dot");
    sd.tensors.remove("emb_l.3.weight");
    match import_err(sd) {
        ModelError::MissingTensor { name, .. } => assert_eq!(name, "emb_l.3.weight"),
        e => panic!("{e}"),
    }
    let mut sd = state_dict("torchrec_dlrm_dcn");
    sd.tensors.remove("inter_arch.crossnet.W_kernels.1");
    match import_err(sd) {
        ModelError::MissingTensor { name, .. } => {
            assert_eq!(name, "inter_arch.crossnet.W_kernels.1")
        }
        e => panic!("{e}"),
    }
    let mut sd = state_dict("torchrec_dlrm");
    sd.tensors.remove("over_arch.model.1.weight");
    match import_err(sd) {
        ModelError::MissingTensor { name, .. } => assert_eq!(name, "over_arch.model.1.weight"),
        e => panic!("{e}"),
    }
}

#[test]
fn wrong_shapes_are_named_with_the_expectation() {
    let mut sd = state_dict("dlrm_dot");
    sd.tensors.insert(
        "bot_l.2.weight".into(),
        Tensor::new(vec![16, 63], vec![0.1; 16 * 63]),
    );
    match import_err(sd) {
        ModelError::TensorShape {
            name,
            expected,
            found,
        } => {
            assert_eq!(name, "bot_l.2.weight");
            assert!(expected.contains("[16, 64]"), "{expected}");
            assert_eq!(found, vec![16, 63]);
        }
        e => panic!("{e}"),
    }
    let mut sd = state_dict("dlrm_dot");
    sd.tensors.insert(
        "top_l.0.weight".into(),
        Tensor::new(vec![64, 53], vec![0.1; 64 * 53]),
    );
    match import_err(sd) {
        ModelError::TensorShape { name, expected, .. } => {
            assert_eq!(name, "top_l.0.weight");
            assert!(expected.contains("52"), "{expected}");
        }
        e => panic!("{e}"),
    }
    let mut sd = state_dict("torchrec_dlrm_dcn");
    sd.tensors.insert(
        "inter_arch.crossnet.bias.1".into(),
        Tensor::new(vec![143], vec![0.0; 143]),
    );
    match import_err(sd) {
        ModelError::TensorShape { name, .. } => assert_eq!(name, "inter_arch.crossnet.bias.1"),
        e => panic!("{e}"),
    }
    let mut sd = state_dict("torchrec_dlrm");
    sd.tensors.insert(
        "over_arch.model.1.bias".into(),
        Tensor::new(vec![2], vec![0.0; 2]),
    );
    match import_err(sd) {
        ModelError::TensorShape { name, .. } => assert_eq!(name, "over_arch.model.1.bias"),
        e => panic!("{e}"),
    }
}

#[test]
fn non_finite_weights_are_refused_with_name_and_index() {
    let mut sd = state_dict("dlrm_dot");
    sd.tensors.get_mut("emb_l.3.weight").unwrap().data[17] = f32::NAN;
    match import_err(sd) {
        ModelError::NonFinite { name, index, .. } => {
            assert_eq!((name.as_str(), index), ("emb_l.3.weight", 17));
        }
        e => panic!("{e}"),
    }
    let mut sd = state_dict("torchrec_dlrm");
    sd.tensors
        .get_mut("dense_arch.model._mlp.1._linear.bias")
        .unwrap()
        .data[5] = f32::INFINITY;
    match import_err(sd) {
        ModelError::NonFinite { name, index, value } => {
            assert_eq!(
                (name.as_str(), index, value),
                ("dense_arch.model._mlp.1._linear.bias", 5, f32::INFINITY)
            );
        }
        e => panic!("{e}"),
    }
}

#[test]
fn unknown_tensors_and_mixed_conventions_are_refused() {
    let mut sd = state_dict("dlrm_dot");
    sd.tensors.insert(
        "bot_l.0.running_mean".into(),
        Tensor::new(vec![64], vec![0.0; 64]),
    );
    assert!(
        matches!(import_err(sd), ModelError::UnexpectedTensor { name, .. } if name == "bot_l.0.running_mean")
    );
    let mut sd = state_dict("dlrm_dot");
    sd.tensors.insert(
        "dense_arch.model._mlp.0._linear.bias".into(),
        Tensor::new(vec![1], vec![0.0]),
    );
    assert!(matches!(
        import_err(sd),
        ModelError::MixedNaming { dlrm, torchrec }
            if torchrec == "dense_arch.model._mlp.0._linear.bias"
                && ["emb_l.", "bot_l.", "top_l."].iter().any(|p| dlrm.starts_with(p))
    ));
    let mut sd = state_dict("dlrm_dot");
    let t = sd.tensors.remove("top_l.2.weight").unwrap();
    sd.tensors.insert("top_l.3.weight".into(), t);
    let b = sd.tensors.remove("top_l.2.bias").unwrap();
    sd.tensors.insert("top_l.3.bias".into(), b);
    assert!(
        matches!(import_err(sd), ModelError::LayerIndex { name, found: 3, expected: 2, .. } if name == "top_l.3.weight")
    );
}

#[test]
fn export_then_import_is_the_identity_for_both_conventions() {
    for name in ["dlrm_dot", "torchrec_dlrm", "torchrec_dlrm_dcn"] {
        let imp = import(name);
        let sd = export_state_dict(&imp.config, &imp.weights, imp.config.naming).unwrap();
        assert_eq!(sd, state_dict(name), "{name}: exported names and values");
        let bytes = sd.to_bytes().unwrap();
        let again = import_state_dict(
            StateDict::from_bytes(name, &bytes).unwrap(),
            &ImportOverrides::default(),
        )
        .unwrap();
        assert_eq!(again, imp, "{name}");
    }
    // dlrm order cannot be written with TorchRec names and a DCN has no dlrm equivalent.
    let imp = import("dlrm_dot");
    assert!(matches!(
        export_state_dict(&imp.config, &imp.weights, Naming::TorchRec),
        Err(ModelError::ExportInteraction {
            naming: Naming::TorchRec,
            interaction: Interaction::Dot { .. },
        })
    ));
    let imp = import("torchrec_dlrm_dcn");
    assert!(matches!(
        export_state_dict(&imp.config, &imp.weights, Naming::Dlrm),
        Err(ModelError::ExportInteraction {
            naming: Naming::Dlrm,
            interaction: Interaction::Dcn { .. },
        })
    ));
}

#[test]
fn wrapper_prefixes_are_stripped() {
    let mut sd = state_dict("torchrec_dlrm");
    sd.tensors = sd
        .tensors
        .into_iter()
        .map(|(k, v)| (format!("module.model.{k}"), v))
        .collect();
    let imp = import_state_dict(sd, &ImportOverrides::default()).unwrap();
    assert_eq!(imp, import("torchrec_dlrm"));
}

fn config(
    tables: usize,
    dim: usize,
    bottom_out: usize,
    interaction: Interaction,
    naming: Naming,
) -> ModelConfig {
    ModelConfig {
        dense_features: 5,
        bottom_mlp: vec![8, bottom_out],
        tables: (0..tables)
            .map(|t| TableConfig {
                rows: 10 + t,
                dim,
                pooling: PoolingMode::Sum,
            })
            .collect(),
        interaction,
        top_mlp: vec![6, 1],
        naming,
    }
}

#[test]
fn interaction_inference_covers_self_interaction_cat_and_ambiguity() {
    let lower = |s| Interaction::Dot {
        order: DotOrder::LowerByRow,
        self_interaction: s,
    };
    for interaction in [lower(true), lower(false), Interaction::Cat] {
        let c = config(3, 4, 4, interaction.clone(), Naming::Dlrm);
        let w = Weights::random(&c, 2);
        let sd = export_state_dict(&c, &w, Naming::Dlrm).unwrap();
        let imp = import_state_dict(sd, &ImportOverrides::default()).unwrap();
        assert_eq!(imp.config.interaction, interaction);
    }
    // Cat with unequal dims (dot impossible).
    let mut c = config(3, 4, 4, Interaction::Cat, Naming::Dlrm);
    c.tables[1].dim = 6;
    let sd = export_state_dict(&c, &Weights::random(&c, 2), Naming::Dlrm).unwrap();
    assert_eq!(
        import_state_dict(sd, &ImportOverrides::default())
            .unwrap()
            .config,
        c
    );
    // 7 tables of dim 4: dot gives 4 + 28 = 32 inputs and so does cat.
    let c = config(7, 4, 4, Interaction::Cat, Naming::Dlrm);
    let w = Weights::random(&c, 3);
    let sd = export_state_dict(&c, &w, Naming::Dlrm).unwrap();
    assert!(matches!(
        import_err(sd.clone()),
        ModelError::AmbiguousInteraction { top_in: 32, candidates } if candidates.len() == 2
    ));
    let ov = ImportOverrides::from_json(r#"{"interaction": {"kind": "cat"}, "pooling": "mean"}"#)
        .unwrap();
    let imp = import_state_dict(sd.clone(), &ov).unwrap();
    assert_eq!(imp.config.interaction, Interaction::Cat);
    assert!(
        imp.config
            .tables
            .iter()
            .all(|t| t.pooling == PoolingMode::Mean)
    );
    let ov = ImportOverrides {
        interaction: Some(lower(true)),
        ..Default::default()
    };
    assert!(matches!(
        import_state_dict(sd, &ov),
        Err(ModelError::TensorShape { .. })
    ));
    assert!(ImportOverrides::from_json(r#"{"interaktion": null}"#).is_err());
}

#[test]
fn torchrec_tables_are_ordered_naturally_or_as_told() {
    let c = config(
        12,
        4,
        4,
        Interaction::Dot {
            order: DotOrder::UpperByRow,
            self_interaction: false,
        },
        Naming::TorchRec,
    );
    let mut w = Weights::random(&c, 4);
    w.table_names = (0..12).map(|t| format!("t_cat_{t}")).collect();
    let sd = export_state_dict(&c, &w, Naming::TorchRec).unwrap();
    let imp = import_state_dict(sd.clone(), &ImportOverrides::default()).unwrap();
    assert_eq!(imp.weights.table_names, w.table_names);
    assert_eq!(
        imp.config.tables.iter().map(|t| t.rows).collect::<Vec<_>>(),
        (10..22).collect::<Vec<_>>()
    );
    let mut order = w.table_names.clone();
    order.reverse();
    let ov = ImportOverrides {
        table_order: Some(order.clone()),
        ..Default::default()
    };
    let imp = import_state_dict(sd.clone(), &ov).unwrap();
    assert_eq!(imp.weights.table_names, order);
    assert_eq!(imp.config.tables[0].rows, 21);
    let ov = ImportOverrides {
        table_order: Some(order[1..].to_vec()),
        ..Default::default()
    };
    assert!(matches!(
        import_state_dict(sd, &ov),
        Err(ModelError::TableOrder { order: o, tables }) if o == order[1..] && tables.len() == order.len()
    ));
}
