//! Precision plans: JSON round trip and validation against the config.

mod common;

use common::import;
use quantrec_kernels::KernelError;
use quantrec_kernels::formats::TableFormat;
use quantrec_model::plan::{ActivationPlan, CrossPrecision, LayerPrecision};
use quantrec_model::{ModelError, Plan};

#[test]
fn plans_round_trip_through_json() {
    let imp = import("torchrec_dlrm_dcn");
    let mut plan = Plan::f32(&imp.config);
    assert_eq!(plan.cross.len(), 2);
    assert_eq!(Plan::from_json(&plan.to_json()).unwrap(), plan);
    plan.bottom[0] = LayerPrecision::Int8 {
        per_channel: true,
        activations: ActivationPlan::Static {
            scale: 0.02,
            zero_point: 3,
        },
    };
    plan.bottom[1] = LayerPrecision::Bf16;
    plan.cross[1] = CrossPrecision {
        v: LayerPrecision::F16,
        w: LayerPrecision::Int8 {
            per_channel: false,
            activations: ActivationPlan::Dynamic,
        },
    };
    plan.tables = TableFormat::ALL
        .iter()
        .copied()
        .chain([TableFormat::Fused4])
        .collect();
    plan.validate(&imp.config).unwrap();
    let json = plan.to_json();
    assert!(
        json.contains("\"fused8half\"") && json.contains("\"kind\": \"int8\""),
        "{json}"
    );
    assert_eq!(Plan::from_json(&json).unwrap(), plan);
    let text = r#"{"bottom":[{"kind":"f16"},{"kind":"f32"}],"top":[{"kind":"f32"},{"kind":"f32"},{"kind":"f32"}],"tables":["f32","f32","f32","f32","f32","f32","f32","fused2"]}"#;
    let parsed = Plan::from_json(text).unwrap();
    assert!(parsed.cross.is_empty());
    assert!(matches!(
        Plan::from_json(&text.replace("fused2", "fused3")),
        Err(ModelError::Json { .. })
    ));
}

#[test]
fn plans_that_do_not_fit_are_refused() {
    let imp = import("dlrm_dot");
    let c = &imp.config;
    let mut p = Plan::f32(c);
    p.top.pop();
    assert!(matches!(
        p.validate(c),
        Err(ModelError::PlanMismatch { what: "top-MLP layers", expected, found })
            if found + 1 == expected
    ));
    let mut p = Plan::f32(c);
    p.cross.push(CrossPrecision::default());
    assert!(matches!(
        p.validate(c),
        Err(ModelError::PlanMismatch {
            what: "cross layers",
            expected: 0,
            found: 1
        })
    ));
    let mut p = Plan::f32(c);
    p.top[0] = LayerPrecision::Int8 {
        per_channel: false,
        activations: ActivationPlan::Static {
            scale: 0.0,
            zero_point: 0,
        },
    };
    assert!(matches!(
        p.validate(c),
        Err(ModelError::StaticActivation { layer, zero_point: 0, .. }) if layer == "top.0"
    ));
    let mut p = Plan::f32(c);
    p.top[1] = LayerPrecision::Int8 {
        per_channel: false,
        activations: ActivationPlan::Static {
            scale: 1.0,
            zero_point: 300,
        },
    };
    assert!(matches!(
        p.validate(c),
        Err(ModelError::StaticActivation { layer, zero_point: 300, .. }) if layer == "top.1"
    ));
    let mut cfg = c.clone();
    for t in &mut cfg.tables {
        t.dim = 6;
    }
    let mut p = Plan::f32(&cfg);
    p.tables[3] = TableFormat::Fused2;
    let err = p.validate(&cfg).unwrap_err();
    assert!(
        matches!(
            &err,
            ModelError::PlanTableFormat { table: 3, source }
                if matches!(**source, KernelError::UnsupportedDim { dim: 6, .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("table 3"), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the kernel's refusal chains"
    );
}

#[test]
fn configs_and_weights_that_do_not_fit_are_typed_errors() {
    let imp = import("dlrm_dot");
    let good = imp.config.clone();
    let mut c = good.clone();
    c.dense_features = 0;
    assert!(matches!(c.validate(), Err(ModelError::NoDenseFeatures)));
    let mut c = good.clone();
    c.bottom_mlp[1] = 0;
    assert!(matches!(
        c.validate(),
        Err(ModelError::ZeroWidthLayer {
            mlp: "bottom",
            layer: 1,
            ..
        })
    ));
    let mut c = good.clone();
    c.top_mlp.push(2);
    assert!(
        matches!(c.validate(), Err(ModelError::TopMlpOutput { widths }) if widths == c.top_mlp)
    );
    let mut c = good.clone();
    c.tables[2].rows = 0;
    assert!(matches!(
        c.validate(),
        Err(ModelError::EmptyTable {
            table: 2,
            rows: 0,
            ..
        })
    ));
    let mut c = good.clone();
    c.tables[1].dim += 1;
    assert!(matches!(
        c.validate(),
        Err(ModelError::DotDimension { table: 1, expected, found }) if found == expected + 1
    ));
    // Weights of another architecture: the count that differs is named.
    let mut w = imp.weights.clone();
    w.tables.pop();
    assert!(matches!(
        w.check(&good),
        Err(ModelError::WeightCount { what: "tables", expected, found }) if found + 1 == expected
    ));
}
