//! Artifact save/load round trips (f32, reduced precision, fused tables) and corruption handling.

mod common;

use common::{BatchSpec, assert_close, fixture, import, inputs, random_batch, temp_path};
use quantrec_data::Batch;
use quantrec_kernels::formats::{
    QuantizeOptions, TableFormat, TableRef, dequantize_row, quantize_table,
};
use quantrec_model::artifact::{self, Artifact, FORMAT_VERSION, Provenance};
use quantrec_model::config::{
    DotOrder, Interaction, ModelConfig, Naming, PoolingMode, TableConfig,
};
use quantrec_model::plan::{ActivationPlan, CrossPrecision, LayerPrecision};
use quantrec_model::tables::TableBytes;
use quantrec_model::weights::TableData;
use quantrec_model::{Model, ModelError, Plan, Scratch, Weights};

fn provenance() -> Provenance {
    Provenance {
        source_file: Some("dlrm_dot.safetensors".into()),
        source_sha256: Some("00".repeat(32)),
        calibration: Some("none".into()),
        ne: Some(0.81),
        ne_reference: None,
        notes: None,
    }
}

fn predict(model: &Model, batch: &Batch) -> Vec<f32> {
    model.predict(batch, &mut Scratch::new()).unwrap().to_vec()
}

#[test]
fn f32_round_trip_is_exact_through_memory_and_mmap() {
    let imp = import("dlrm_dot");
    let batch = inputs("dlrm_dot").batch;
    let plan = Plan::f32(&imp.config);
    let reference = Model::from_parts(&imp.config, &imp.weights, &plan).unwrap();
    let want = predict(&reference, &batch);

    let bytes = artifact::to_bytes(&imp.config, &imp.weights, &plan, &provenance()).unwrap();
    let a = Artifact::from_bytes(bytes.clone()).unwrap();
    assert_eq!(a.meta.format_version, FORMAT_VERSION);
    assert_eq!(a.meta.config, imp.config);
    assert_eq!(a.meta.plan, plan);
    assert_eq!(a.meta.provenance, provenance());
    assert_eq!(a.meta.table_names, imp.weights.table_names);
    a.verify().unwrap();
    assert_eq!(predict(&a.model, &batch), want);

    let path = temp_path("f32-round-trip");
    std::fs::write(&path, &bytes).unwrap();
    let mapped = Artifact::load(&path).unwrap();
    mapped.verify().unwrap();
    assert_eq!(mapped.file_bytes, bytes.len());
    assert_eq!(predict(&mapped.model, &batch), want);
    assert_eq!(predict(&Model::load(&path).unwrap(), &batch), want);
    let mut held = Artifact::load(&path).unwrap();
    let mapped_tables = |a: &Artifact| {
        a.model
            .tables()
            .iter()
            .filter(|t| matches!(t.bytes, TableBytes::Mapped { .. }))
            .count()
    };
    assert_eq!(mapped_tables(&held), imp.config.tables.len());
    held.model.load_tables_into_memory().unwrap();
    assert_eq!(mapped_tables(&held), 0);
    assert_eq!(predict(&held.model, &batch), want);

    // `save` replaces the file instead of rewriting it, so a model mapped from it keeps working.
    let mut half = Plan::f32(&imp.config);
    half.tables = vec![TableFormat::Bf16; 8];
    artifact::save(&path, &imp.config, &imp.weights, &half, &provenance()).unwrap();
    assert_eq!(predict(&mapped.model, &batch), want);
    let reloaded = Artifact::load(&path).unwrap();
    assert_eq!(reloaded.meta.plan, half);
    assert!(reloaded.file_bytes < bytes.len());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn mixed_precision_round_trip_matches_the_in_memory_model_and_shrinks_the_file() {
    let imp = import("torchrec_dlrm_dcn");
    let batch = inputs("torchrec_dlrm_dcn").batch;
    let int8 = |per_channel, activations| LayerPrecision::Int8 {
        per_channel,
        activations,
    };
    let plan = Plan {
        bottom: vec![LayerPrecision::F16, int8(true, ActivationPlan::Dynamic)],
        cross: vec![
            CrossPrecision {
                v: LayerPrecision::Bf16,
                w: int8(false, ActivationPlan::Dynamic),
            },
            CrossPrecision {
                v: int8(
                    true,
                    ActivationPlan::Static {
                        scale: 0.05,
                        zero_point: 128,
                    },
                ),
                w: LayerPrecision::F32,
            },
        ],
        top: vec![
            int8(false, ActivationPlan::Dynamic),
            LayerPrecision::Bf16,
            LayerPrecision::F32,
        ],
        tables: vec![
            TableFormat::F16,
            TableFormat::Bf16,
            TableFormat::F32,
            TableFormat::F16,
            TableFormat::Bf16,
            TableFormat::F16,
            TableFormat::F16,
            TableFormat::Bf16,
        ],
        // Carried through the artifact's metadata (no N-bit table here, so no bytes change).
        table_refit: true,
        table_curvature: false,
        tiers: Default::default(),
    };
    let in_memory = Model::from_parts(&imp.config, &imp.weights, &plan).unwrap();
    let want = predict(&in_memory, &batch);
    let f32_bytes = artifact::to_bytes(
        &imp.config,
        &imp.weights,
        &Plan::f32(&imp.config),
        &provenance(),
    )
    .unwrap();
    let bytes = artifact::to_bytes(&imp.config, &imp.weights, &plan, &provenance()).unwrap();
    assert!(
        bytes.len() * 10 < f32_bytes.len() * 6,
        "mixed artifact {} bytes vs f32 {}",
        bytes.len(),
        f32_bytes.len()
    );
    let a = Artifact::from_bytes(bytes).unwrap();
    a.verify().unwrap();
    assert_eq!(a.meta.plan, plan);
    assert_eq!(a.meta.quantization["bottom.1"].precision, "int8-dyn/pc");
    assert_eq!(a.tensor_bytes["bottom.1.weight"], 16 * 64);
    assert_eq!(a.tensor_bytes["bottom.1.weight_scale"], 16 * 4);
    assert_eq!(a.tensor_bytes["top.0.weight_scale"], 4);
    assert_eq!(a.tensor_bytes["bottom.0.weight"], 64 * 13 * 2);
    assert_eq!(a.tensor_bytes["tables.0"], 97 * 16 * 2);
    // Int8 layers are packed from the stored codes and scales, which are the kernel's own: the
    // loaded model is the in-memory one, bit for bit.
    assert_eq!(predict(&a.model, &batch), want);
    for (i, (got, built)) in a
        .model
        .bottom_layers()
        .iter()
        .zip(in_memory.bottom_layers())
        .enumerate()
    {
        if let (Some(g), Some(b)) = (got.int8_weights(), built.int8_weights()) {
            assert_eq!(g.codes(), b.codes(), "bottom.{i} codes");
            assert_eq!(g.scales(), b.scales(), "bottom.{i} scales");
        }
    }
}

/// A small dot model over three 64 × 16 tables.
fn small_config(poolings: [PoolingMode; 3]) -> ModelConfig {
    ModelConfig {
        dense_features: 13,
        bottom_mlp: vec![32, 16],
        tables: poolings
            .iter()
            .map(|&pooling| TableConfig {
                rows: 64,
                dim: 16,
                pooling,
            })
            .collect(),
        interaction: Interaction::Dot {
            order: DotOrder::LowerByRow,
            self_interaction: true,
        },
        top_mlp: vec![8, 1],
        naming: Naming::Dlrm,
    }
}

fn small_batch(size: usize, seed: u64) -> Batch {
    let spec = BatchSpec {
        dense: (0.0, 3.0),
        min_len: 0,
        len_span: 4,
        skewed: false,
        weights: Some((0.0, 2.0)),
    };
    random_batch(13, &[64; 3], size, seed, &spec)
}

#[test]
fn fbgemm_packed_tables_load_run_and_round_trip_byte_exact() {
    let packed = quantrec_testkit::tensors(&fixture("rowwise_formats.safetensors"));
    let config = small_config([
        PoolingMode::Sum,
        PoolingMode::Mean,
        PoolingMode::WeightedSum,
    ]);
    let formats = [
        TableFormat::Fused8,
        TableFormat::Fused4,
        TableFormat::Fused2,
    ];
    let names = ["byte_d16", "nbit4_d16", "nbit2_d16"];
    let mut weights = Weights::random(&config, 11);
    let mut dequantized = weights.clone();
    for (t, (f, n)) in formats.iter().zip(names).enumerate() {
        let bytes = packed[n].bytes.clone();
        assert_eq!(packed[n].shape, vec![64, f.row_bytes(16)]);
        let table = TableRef::new(*f, 64, 16, &bytes).unwrap();
        let mut values = vec![0f32; 64 * 16];
        for (r, out) in values.chunks_exact_mut(16).enumerate() {
            dequantize_row(*f, table.row(r), out);
        }
        dequantized.tables[t] = TableData::F32(values);
        weights.tables[t] = TableData::Encoded { format: *f, bytes };
    }
    let mut plan = Plan::f32(&config);
    plan.tables = formats.to_vec();
    let model = Model::from_parts(&config, &weights, &plan).unwrap();
    let reference = Model::from_parts(&config, &dequantized, &Plan::f32(&config)).unwrap();
    let batch = small_batch(50, 3);
    let want = predict(&reference, &batch);
    assert_close(
        "fused vs dequantized",
        &predict(&model, &batch),
        &want,
        1e-5,
        1e-3,
    );

    let bytes = artifact::to_bytes(&config, &weights, &plan, &Provenance::default()).unwrap();
    let path = temp_path("fused-round-trip");
    std::fs::write(&path, &bytes).unwrap();
    let a = Artifact::load(&path).unwrap();
    for (t, n) in names.iter().enumerate() {
        assert_eq!(a.model.tables()[t].bytes.as_slice(), &packed[*n].bytes[..]);
        assert_eq!(
            a.tensor_bytes[&format!("tables.{t}")],
            packed[*n].bytes.len()
        );
    }
    assert_eq!(predict(&a.model, &batch), predict(&model, &batch));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn f32_tables_are_quantized_into_fused_formats_by_the_plan() {
    let config = small_config([PoolingMode::Sum; 3]);
    let weights = Weights::random(&config, 1);
    let mut plan = Plan::f32(&config);
    plan.tables[0] = TableFormat::Fused8;
    plan.tables[1] = TableFormat::Fused4;
    plan.tables[2] = TableFormat::Fused2;
    let model = Model::from_parts(&config, &weights, &plan).unwrap();
    for (t, greedy) in [(0, false), (1, true), (2, true)] {
        let TableData::F32(values) = &weights.tables[t] else {
            panic!("random weights are f32")
        };
        let tc = &config.tables[t];
        let opts = QuantizeOptions {
            greedy,
            refine: false,
            name: "t",
        };
        let expected = quantize_table(values, tc.rows, tc.dim, plan.tables[t], &opts).unwrap();
        assert_eq!(
            model.tables()[t].table_ref().data,
            &expected[..],
            "table {t}"
        );
    }
    // A NaN in a table is refused with the table named.
    let mut bad = weights.clone();
    if let TableData::F32(v) = &mut bad.tables[1] {
        v[5] = f32::NAN;
    }
    let err = Model::from_parts(&config, &bad, &plan).unwrap_err();
    assert!(err.to_string().contains("tables.1"), "{err}");
}

fn small_artifact() -> Vec<u8> {
    let config = small_config([PoolingMode::Sum; 3]);
    let weights = Weights::random(&config, 5);
    let mut plan = Plan::f32(&config);
    plan.bottom[0] = LayerPrecision::Int8 {
        per_channel: true,
        activations: ActivationPlan::Dynamic,
    };
    plan.tables[2] = TableFormat::F16;
    artifact::to_bytes(&config, &weights, &plan, &provenance()).unwrap()
}

#[test]
fn truncated_artifacts_are_errors() {
    let bytes = small_artifact();
    Artifact::from_bytes(bytes.clone()).unwrap();
    let n = bytes.len();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize + 8;
    let mut cuts: Vec<usize> = (0..n).step_by(n / 97 + 1).collect();
    cuts.extend([1, 7, 8, 9, header - 1, header, header + 1, n - 1]);
    for cut in cuts {
        let r = Artifact::from_bytes(bytes[..cut].to_vec());
        assert!(r.is_err(), "truncated at {cut} of {n} loaded");
    }
}

#[test]
fn corrupted_headers_never_panic_and_data_flips_fail_verification() {
    let bytes = small_artifact();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize + 8;
    let mut errors = 0;
    let mut total = 0;
    for pos in (0..header).step_by(7) {
        for flip in [0x01u8, 0x20, 0x80] {
            let mut b = bytes.clone();
            b[pos] ^= flip;
            total += 1;
            match Artifact::from_bytes(b) {
                Err(_) => errors += 1,
                Ok(a) => {
                    // A flip that keeps the header valid (e.g. inside a free-form string) must
                    // still give a usable model.
                    let batch = small_batch(4, 9);
                    if let Ok(p) = a.model.predict(&batch, &mut Scratch::new()) {
                        assert!(p.iter().all(|v| v.is_finite()));
                    }
                }
            }
        }
    }
    assert!(
        errors * 10 >= total * 8,
        "only {errors} of {total} header flips were refused"
    );
    for pos in (header..bytes.len()).step_by(61) {
        let mut b = bytes.clone();
        b[pos] ^= 0x10;
        if let Ok(a) = Artifact::from_bytes(b) {
            assert!(
                a.verify().is_err(),
                "data flip at {pos} passed verification"
            );
        }
    }
}

/// Rewrites the metadata JSON of an artifact.
fn rewrite_meta(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_str(&header.metadata().as_ref().unwrap()["quantrec"]).unwrap();
    edit(&mut meta);
    let md = std::collections::HashMap::from([("quantrec".to_string(), meta.to_string())]);
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = st.tensors();
    safetensors::serialize(tensors, Some(md)).unwrap()
}

#[test]
fn wrong_version_missing_metadata_and_inconsistent_shapes_are_typed_errors() {
    let bytes = small_artifact();
    let v2 = rewrite_meta(&bytes, |m| m["format_version"] = 2.into());
    assert!(matches!(
        Artifact::from_bytes(v2),
        Err(ModelError::ArtifactVersion { found: 2, .. })
    ));
    let shape = rewrite_meta(&bytes, |m| m["config"]["dense_features"] = 12.into());
    let err = Artifact::from_bytes(shape).unwrap_err();
    assert!(
        matches!(
            &err,
            ModelError::ArtifactTensor { tensor, expected_shape, found_shape, .. }
                if tensor == "bottom.0.weight" && expected_shape[1] == 12 && found_shape[1] == 13
        ),
        "{err}"
    );
    let rows = rewrite_meta(&bytes, |m| m["config"]["tables"][1]["rows"] = 65.into());
    let err = Artifact::from_bytes(rows).unwrap_err();
    assert!(
        matches!(
            &err,
            ModelError::ArtifactTensor { tensor, expected_shape, .. }
                if tensor == "tables.1" && expected_shape[0] == 65
        ),
        "{err}"
    );
    let plan = rewrite_meta(&bytes, |m| m["plan"]["tables"][2] = "f32".into());
    let err = Artifact::from_bytes(plan).unwrap_err();
    assert!(
        matches!(&err, ModelError::ArtifactTensor { tensor, .. } if tensor == "tables.2"),
        "{err}"
    );
    let top = rewrite_meta(&bytes, |m| m["plan"]["top"].as_array_mut().unwrap().clear());
    let err = Artifact::from_bytes(top).unwrap_err();
    match &err {
        ModelError::ArtifactMeta {
            part: "plan",
            source,
            ..
        } => assert!(
            matches!(
                **source,
                ModelError::PlanMismatch {
                    what: "top-MLP layers",
                    found: 0,
                    ..
                }
            ),
            "{source}"
        ),
        other => panic!("{other}"),
    }
    let state_dict = std::fs::read(fixture("dlrm_dot.safetensors")).unwrap();
    let err = Artifact::from_bytes(state_dict).unwrap_err();
    assert!(matches!(err, ModelError::NotAnArtifact { .. }), "{err}");
    // A truncated file: the safetensors container is refused, naming the buffer.
    let err = Artifact::from_bytes(bytes[..bytes.len() - 3].to_vec()).unwrap_err();
    assert!(
        matches!(&err, ModelError::SafeTensors { what, .. } if what == "<memory>"),
        "{err}"
    );
    let err = Artifact::from_bytes(bytes[..5].to_vec()).unwrap_err();
    assert!(matches!(err, ModelError::SafeTensors { .. }), "{err}");
    let missing = temp_path("does-not-exist");
    assert!(matches!(
        Artifact::load(&missing),
        Err(ModelError::Io { .. })
    ));
}

/// The artifact stores int8 layers as codes and scales; they must be exactly what the int8 kernel
/// runs. Unit-vector inputs with activation scale 1 and zero point 0 read the kernel's `code · scale`
/// back out of `PackedLinear::forward`.
#[test]
fn stored_int8_codes_are_what_the_kernel_runs() {
    use quantrec_kernels::gemm::{
        ActivationQuant, Int8Spec, LinearScratch, PackedLinear, Precision, QParams,
    };
    let (n, k) = (7, 19);
    let mut rng = quantrec_kernels::rng::Rng::new(8);
    let w = rng.normal_vec(n * k, 0.3);
    for per_channel in [false, true] {
        let spec = Int8Spec {
            per_channel,
            activations: ActivationQuant::Static(QParams {
                scale: 1.0,
                zero_point: 0,
            }),
        };
        let layer = PackedLinear::new(&w, None, n, k, Precision::Int8(spec)).unwrap();
        let eye: Vec<f32> = (0..k * k)
            .map(|i| if i % (k + 1) == 0 { 1.0 } else { 0.0 })
            .collect();
        let mut out = vec![0f32; k * n];
        layer
            .forward(&eye, k, &mut out, false, &mut LinearScratch::default())
            .unwrap();
        let (codes, scales) = artifact::quantize_int8(&w, n, k, per_channel);
        for p in 0..k {
            for j in 0..n {
                let s = if per_channel { scales[j] } else { scales[0] };
                assert_eq!(
                    out[p * n + j],
                    f32::from(codes[j * k + p]) * s,
                    "per_channel {per_channel}, weight ({j}, {p})"
                );
            }
        }
    }
}

#[test]
fn weights_come_back_out_of_an_artifact() {
    let imp = import("torchrec_dlrm_dcn");
    let f32_plan = Plan::f32(&imp.config);
    let bytes = artifact::to_bytes(&imp.config, &imp.weights, &f32_plan, &provenance()).unwrap();
    let a = Artifact::from_bytes(bytes).unwrap();
    assert_eq!(a.weights(), imp.weights);

    // A reduced-precision artifact gives back its stored values: rebuilding under the same plan
    // reproduces the loaded model.
    let mut plan = f32_plan.clone();
    plan.top[0] = LayerPrecision::Bf16;
    plan.bottom[1] = LayerPrecision::F16;
    plan.tables[3] = TableFormat::F16;
    let bytes = artifact::to_bytes(&imp.config, &imp.weights, &plan, &provenance()).unwrap();
    let a = Artifact::from_bytes(bytes).unwrap();
    let w = a.weights();
    assert!(matches!(
        w.tables[3],
        TableData::Encoded {
            format: TableFormat::F16,
            ..
        }
    ));
    let rebuilt = Model::from_parts(&a.meta.config, &w, &plan).unwrap();
    let batch = inputs("torchrec_dlrm_dcn").batch;
    assert_eq!(predict(&rebuilt, &batch), predict(&a.model, &batch));
}

/// A loaded artifact runs the stored codes even where re-quantizing `code · scale` would not give
/// them back (a −128 code), including with chained static int8 layers.
#[test]
fn int8_artifacts_load_the_stored_codes_exactly() {
    let config = small_config([PoolingMode::Sum; 3]);
    let mut weights = Weights::random(&config, 21);
    // Make the largest magnitude of bottom.0 negative: −2.55 / (2.55 / 127.5) rounds to −128.
    assert!(weights.bottom[0].weight.iter().all(|v| v.abs() < 2.55));
    weights.bottom[0].weight[5] = -2.55;
    let st = |scale, zero_point| LayerPrecision::Int8 {
        per_channel: false,
        activations: ActivationPlan::Static { scale, zero_point },
    };
    let mut plan = Plan::f32(&config);
    plan.bottom = vec![st(0.02, 0), st(0.03, 0)];
    plan.top = vec![st(0.1, 100), st(0.05, 0)];
    let in_memory = Model::from_parts(&config, &weights, &plan).unwrap();
    let bytes = artifact::to_bytes(&config, &weights, &plan, &Provenance::default()).unwrap();
    let a = Artifact::from_bytes(bytes).unwrap();
    let loaded = a.model.bottom_layers()[0].int8_weights().unwrap();
    assert_eq!(loaded.codes()[5], -128);
    assert_eq!(
        loaded.codes(),
        in_memory.bottom_layers()[0].int8_weights().unwrap().codes()
    );
    // Re-quantizing the widened weights picks another scale: the stored codes are not recoverable
    // that way, which is why loading packs them directly.
    let widened = &a.weights().bottom[0].weight;
    let (_, requantized) = artifact::quantize_int8(widened, 32, 13, false);
    assert_ne!(requantized[0], loaded.scales()[0]);
    let batch = small_batch(40, 9);
    assert!(a.model.int8_chaining());
    assert_eq!(predict(&a.model, &batch), predict(&in_memory, &batch));
}
