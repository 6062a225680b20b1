//! Tables in frequency-aware row tiers (several row-wise sub-tables plus a remap): the model
//! equals a plain f32 model whose rows are the tiers' decoded rows (zero for pruned ones) bit for
//! bit, the artifact round-trips them (in memory and memory-mapped), inspect shows them, never-seen
//! ids stay valid and ids past the table stay errors.

mod common;

use common::{import, inputs, temp_path};
use quantrec_kernels::KernelError;
use quantrec_kernels::formats::{TableFormat, dequantize_row};
use quantrec_model::artifact::{self, Artifact, Provenance};
use quantrec_model::inspect::Inspection;
use quantrec_model::plan::{TierLevel, TierPlan};
use quantrec_model::tables::encode_table;
use quantrec_model::tiers::{Remap, TieredData};
use quantrec_model::weights::TableData;
use quantrec_model::{Model, ModelError, Plan, Scratch, Weights};

/// Tiers for a `rows`-row table: a quarter fused8, a quarter fused4, a quarter fused2 (rows
/// ranked in reverse id order), the rest pruned.
fn tier_plan(rows: usize) -> TierPlan {
    let q = rows / 4;
    TierPlan {
        recipe: "test".into(),
        levels: vec![
            TierLevel {
                format: TableFormat::Fused8,
                rows: q,
            },
            TierLevel {
                format: TableFormat::Fused4,
                rows: q,
            },
            TierLevel {
                format: TableFormat::Fused2,
                rows: q,
            },
        ],
        pruned: rows - 3 * q,
    }
}

/// The fixture with tables 1 and 4 tiered, and the plain f32 model it must equal.
fn tiered() -> (
    quantrec_model::ModelConfig,
    Weights,
    Plan,
    Weights,
    Vec<Vec<u32>>,
) {
    let imp = import("dlrm_dot");
    let (config, mut weights) = (imp.config, imp.weights);
    let mut plan = Plan::f32(&config);
    let mut equivalent = weights.clone();
    let mut rankings = Vec::new();
    for t in [1usize, 4] {
        let tc = &config.tables[t];
        let TableData::F32(values) = &weights.tables[t] else {
            panic!("imported tables are f32")
        };
        let tiers = tier_plan(tc.rows);
        let ranking: Vec<u32> = (0..tc.rows as u32).rev().collect();
        let encoded: Vec<(TableFormat, Vec<u8>)> = tiers
            .levels
            .iter()
            .map(|l| {
                let b = encode_table(t, l.format, tc.rows, tc.dim, values, false).unwrap();
                (l.format, b)
            })
            .collect();
        let data = TieredData::split(t, tc.rows, tc.dim, &tiers, &ranking, |f| {
            Ok(encoded.iter().find(|e| e.0 == f).unwrap().1.as_slice())
        })
        .unwrap();
        // The equivalent f32 table: each row decoded from its tier, pruned rows zero.
        let mut dense = vec![0f32; tc.rows * tc.dim];
        for id in 0..tc.rows {
            let r = data.remap.get(id);
            if r < 0 {
                continue;
            }
            let (mut k, mut r) = (0, r as usize);
            while r >= data.tiers[k].rows {
                r -= data.tiers[k].rows;
                k += 1;
            }
            let tier = &data.tiers[k];
            let rb = tier.format.row_bytes(tc.dim);
            dequantize_row(
                tier.format,
                &tier.bytes[r * rb..(r + 1) * rb],
                &mut dense[id * tc.dim..(id + 1) * tc.dim],
            );
        }
        equivalent.tables[t] = TableData::F32(dense);
        plan.tables[t] = TableFormat::Fused8;
        plan.tiers.insert(t, tiers);
        weights.tables[t] = TableData::Tiered(data);
        rankings.push(ranking);
    }
    (config, weights, plan, equivalent, rankings)
}

fn predict(model: &Model, batch: &quantrec_data::Batch) -> Vec<u32> {
    model
        .predict(batch, &mut Scratch::new())
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn a_tiered_model_equals_its_decoded_f32_model_and_round_trips_the_artifact() {
    let (config, weights, plan, equivalent, _) = tiered();
    let batch = inputs("dlrm_dot").batch;
    let want = predict(
        &Model::from_parts(&config, &equivalent, &Plan::f32(&config)).unwrap(),
        &batch,
    );
    let model = Model::from_parts(&config, &weights, &plan).unwrap();
    assert_eq!(predict(&model, &batch), want);
    let f32_bytes = Model::from_parts(&config, &equivalent, &Plan::f32(&config))
        .unwrap()
        .table_bytes();
    assert!(model.table_bytes() < f32_bytes);
    assert_eq!(
        model.table_bytes() as u64,
        quantrec_model::parts::parts(&config, &plan)
            .iter()
            .filter(|p| p.name.starts_with("tables."))
            .map(|p| p.bytes)
            .sum::<u64>()
    );

    let bytes = artifact::to_bytes(&config, &weights, &plan, &Provenance::default()).unwrap();
    let a = Artifact::from_bytes(bytes.clone()).unwrap();
    a.verify().unwrap();
    assert_eq!(a.meta.plan, plan);
    assert!(a.tensor_bytes.contains_key("tables.1.tier2"));
    assert!(a.tensor_bytes.contains_key("tables.4.remap"));
    assert!(!a.tensor_bytes.contains_key("tables.1"));
    assert_eq!(predict(&a.model, &batch), want);
    // The weights read back are the same tiers: saving them again gives the same file.
    assert_eq!(
        artifact::to_bytes(&config, &a.weights(), &plan, &Provenance::default()).unwrap(),
        bytes
    );

    let path = temp_path("tiers");
    std::fs::write(&path, &bytes).unwrap();
    let mut mapped = Artifact::load(&path).unwrap();
    assert_eq!(predict(&mapped.model, &batch), want);
    let text = Inspection::new(&mapped, &path, true).to_string();
    assert!(text.contains("tiers test: fused8"), "{text}");
    mapped.model.load_tables_into_memory().unwrap();
    assert_eq!(predict(&mapped.model, &batch), want);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn pruned_ids_are_valid_and_ids_past_the_table_are_errors() {
    let (config, weights, plan, _, rankings) = tiered();
    let model = Model::from_parts(&config, &weights, &plan).unwrap();
    let mut batch = inputs("dlrm_dot").batch;
    // Table 1's lowest-ranked ids are pruned.
    let pruned = *rankings[0].last().unwrap() as i64;
    batch.sparse[1].ids.iter_mut().for_each(|id| *id = pruned);
    model.predict(&batch, &mut Scratch::new()).unwrap();
    let rows = config.tables[1].rows;
    batch.sparse[1].ids[0] = rows as i64;
    match model.predict(&batch, &mut Scratch::new()) {
        Err(ModelError::Kernel(KernelError::IdOutOfRange { table: 1, id, .. })) => {
            assert_eq!(id, rows as i64)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tiered_plans_need_tiered_tables_and_matching_tiers() {
    let (config, weights, plan, equivalent, _) = tiered();
    assert!(matches!(
        Model::from_parts(&config, &equivalent, &plan),
        Err(ModelError::TiersNeedCalibration { table: 1 })
    ));
    assert!(matches!(
        artifact::to_bytes(&config, &equivalent, &plan, &Provenance::default()),
        Err(ModelError::TiersNeedCalibration { table: 1 })
    ));
    let mut wrong = weights.clone();
    if let TableData::Tiered(d) = &mut wrong.tables[4] {
        let mut v: Vec<i32> = (0..d.remap.len()).map(|i| d.remap.get(i)).collect();
        v[0] = 10_000;
        d.remap = Remap::from_rows(&v, 10);
    }
    assert!(matches!(
        Model::from_parts(&config, &wrong, &plan),
        Err(ModelError::TierData { table: 4, .. })
    ));
    let mut rows_off = plan.clone();
    rows_off.tiers.get_mut(&1).unwrap().pruned += 1;
    assert!(matches!(
        rows_off.validate(&config),
        Err(ModelError::TierPlan { table: 1, .. })
    ));
    // The plan's JSON carries the tiers.
    assert_eq!(Plan::from_json(&plan.to_json()).unwrap(), plan);
}
