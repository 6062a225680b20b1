//! Against a running Redis Cluster (`QUANTREC_REDIS_CLUSTER`): push → predict bit-identical to
//! the in-memory model (one-hot and multi-hot), a half-pushed version is invisible, resume,
//! verify catches corruption, gc drops only unreferenced versions, preloading.

mod common;

use std::sync::Arc;

use common::{inputs, logit_bits, model, store};
use quantrec_data::{Batch, SparseFeature};
use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::rng::Rng;
use quantrec_model::{Model, ModelError};
use quantrec_tables::store::PushOptions;
use quantrec_tables::testing::{batch_of, cluster_urls};
use quantrec_tables::{Policy, RemoteTables, TablesError, model_tables};

fn multi_hot(m: &Model, size: usize, seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let c = m.config();
    let sparse = c
        .tables
        .iter()
        .map(|t| {
            let lengths: Vec<usize> = (0..size).map(|_| rng.below(5) as usize).collect();
            let n = lengths.iter().sum();
            let ids = (0..n).map(|_| rng.below(t.rows as u64) as i64).collect();
            SparseFeature::from_lengths(&lengths, ids)
        })
        .collect();
    batch_of(m, size, sparse, &mut rng, 4.0)
}

fn small_blocks() -> PushOptions {
    PushOptions {
        rows_per_block: 16,
        blocks_per_group: 4,
        max_new_blocks: None,
    }
}

#[test]
fn push_then_predict_is_bit_identical_one_hot_and_multi_hot() {
    let Some(urls) = cluster_urls("push_then_predict_is_bit_identical") else {
        return;
    };
    for format in [TableFormat::F32, TableFormat::Fused4, TableFormat::Fused8] {
        let local = model(format);
        let st = store(&urls, "bits");
        let report = st
            .push("dlrm", &model_tables(&local), &small_blocks())
            .unwrap();
        assert!(report.complete);
        assert_eq!(report.written, report.blocks);
        // Idempotent: the same tables again write nothing and give the same version.
        let again = st
            .push("dlrm", &model_tables(&local), &small_blocks())
            .unwrap();
        assert_eq!(
            (again.version.as_str(), again.written),
            (report.version.as_str(), 0)
        );
        assert_eq!(st.verify("dlrm").unwrap().blocks, report.blocks);

        for cache in [0, 1 << 20] {
            let tables =
                Arc::new(RemoteTables::open(st.clone(), "dlrm", cache, Policy::WTinyLfu).unwrap());
            let mut remote = local.clone();
            remote.set_row_source(tables.clone()).unwrap();
            let one_hot = inputs();
            assert_eq!(
                logit_bits(&remote, &one_hot).unwrap(),
                logit_bits(&local, &one_hot).unwrap()
            );
            for seed in 0..3 {
                let b = multi_hot(&local, 64, seed);
                assert_eq!(
                    logit_bits(&remote, &b).unwrap(),
                    logit_bits(&local, &b).unwrap(),
                    "{format:?} cache {cache} seed {seed}"
                );
            }
            let m = tables.metrics();
            assert!(m.fetched_rows.get() > 0);
            if cache > 0 {
                assert!(m.hit_ratio().unwrap() > 0.0, "repeated rows hit the cache");
            } else {
                assert_eq!(m.hit_ratio(), Some(0.0));
            }
        }
    }
}

#[test]
fn a_half_pushed_version_is_invisible_and_the_push_resumes() {
    let Some(urls) = cluster_urls("a_half_pushed_version_is_invisible") else {
        return;
    };
    let v1 = model(TableFormat::Fused8);
    let v2 = model(TableFormat::Fused4);
    let st = store(&urls, "half");
    let half = PushOptions {
        max_new_blocks: Some(10),
        ..small_blocks()
    };
    let r = st.push("dlrm", &model_tables(&v1), &half).unwrap();
    assert!(!r.complete);
    assert_eq!(r.written, 10);
    assert!(matches!(
        st.manifest("dlrm"),
        Err(TablesError::NoManifest { .. })
    ));
    assert!(matches!(
        RemoteTables::open(st.clone(), "dlrm", 0, Policy::WTinyLfu),
        Err(TablesError::NoManifest { .. })
    ));
    let done = st
        .push("dlrm", &model_tables(&v1), &small_blocks())
        .unwrap();
    assert!(done.complete);
    assert_eq!((done.skipped, done.written), (10, r.blocks - 10));
    st.verify("dlrm").unwrap();

    // A second version pushed halfway leaves the first one served.
    let r2 = st.push("dlrm", &model_tables(&v2), &half).unwrap();
    assert!(!r2.complete);
    assert_ne!(r2.version, done.version);
    assert_eq!(st.manifest("dlrm").unwrap().layout.version, done.version);
    let tables = Arc::new(RemoteTables::open(st.clone(), "dlrm", 0, Policy::WTinyLfu).unwrap());
    let mut remote = v1.clone();
    remote.set_row_source(tables).unwrap();
    assert_eq!(
        logit_bits(&remote, &inputs()).unwrap(),
        logit_bits(&v1, &inputs()).unwrap()
    );
    // The fused4 model cannot take the fused8 store.
    let mut wrong = v2.clone();
    let t = Arc::new(RemoteTables::open(st.clone(), "dlrm", 0, Policy::WTinyLfu).unwrap());
    assert!(matches!(
        wrong.set_row_source(t),
        Err(ModelError::RemoteTableMismatch { .. })
    ));

    // gc: the unfinished version is young (a push may be running) until the grace period is 0.
    let g = st.gc(3600.0).unwrap();
    assert_eq!(
        (g.kept.clone(), g.young.clone()),
        (vec![done.version.clone()], vec![r2.version.clone()])
    );
    let g = st.gc(0.0).unwrap();
    assert_eq!(g.dropped, vec![r2.version.clone()]);
    assert!(
        g.keys_deleted >= 11,
        "10 blocks and the layout: {}",
        g.keys_deleted
    );
    st.verify("dlrm").unwrap();
    // Pushing v2 in full moves the manifest; then v1 is unreferenced and gc drops it.
    let full = st
        .push("dlrm", &model_tables(&v2), &small_blocks())
        .unwrap();
    assert!(full.complete && full.skipped == 0);
    let g = st.gc(0.0).unwrap();
    assert_eq!(
        (g.kept, g.dropped),
        (vec![full.version.clone()], vec![done.version])
    );
    st.verify("dlrm").unwrap();
}

#[test]
fn verify_reports_a_corrupted_block_and_fetch_a_missing_one() {
    let Some(urls) = cluster_urls("verify_reports_a_corrupted_block") else {
        return;
    };
    let m = model(TableFormat::Fused8);
    let st = store(&urls, "corrupt");
    let r = st.push("dlrm", &model_tables(&m), &small_blocks()).unwrap();
    let key = st.keys().block(&r.version, 1, 0, 2);
    let rb = m.tables()[1].format.row_bytes(m.tables()[1].dim);
    let k = key.clone();
    st.cluster()
        .run("corrupt", None, move |mut c| async move {
            let bad = vec![0x5au8; 16 * rb];
            redis::cmd("SET")
                .arg(&k)
                .arg(bad)
                .query_async::<()>(&mut c)
                .await
                .map_err(|e| TablesError::redis("SET", e))
        })
        .unwrap();
    match st.verify("dlrm") {
        Err(TablesError::Checksum {
            table: 1,
            block: 2,
            key: k,
        }) => assert_eq!(k, key),
        other => panic!("expected a checksum error, got {other:?}"),
    }
    let k = key.clone();
    st.cluster()
        .run("delete", None, move |mut c| async move {
            redis::cmd("DEL")
                .arg(&k)
                .query_async::<()>(&mut c)
                .await
                .map_err(|e| TablesError::redis("DEL", e))
        })
        .unwrap();
    let tables = Arc::new(RemoteTables::open(st.clone(), "dlrm", 0, Policy::WTinyLfu).unwrap());
    let mut remote = m.clone();
    remote.set_row_source(tables).unwrap();
    let mut b = inputs();
    b.sparse[1].ids[0] = 2 * 16 + 3;
    match remote.predict(&b, &mut quantrec_model::Scratch::new()) {
        Err(ModelError::RemoteRows { table: 1, source }) => {
            let e = source.downcast_ref::<TablesError>().expect("a TablesError");
            assert!(matches!(e, TablesError::MissingKey { table: 1, .. }), "{e}");
        }
        other => panic!("expected RemoteRows, got {other:?}"),
    }
}

#[test]
fn preloading_the_hottest_rows_makes_the_first_batch_hit() {
    let Some(urls) = cluster_urls("preloading_the_hottest_rows") else {
        return;
    };
    let m = model(TableFormat::Fused4);
    let st = store(&urls, "preload");
    st.push("dlrm", &model_tables(&m), &PushOptions::default())
        .unwrap();
    let tables = RemoteTables::open(st, "dlrm", 1 << 20, Policy::WTinyLfu).unwrap();
    let calib = inputs();
    let report = tables.preload_hottest([&calib]).unwrap();
    assert!(report.distinct > 0);
    assert_eq!(report.loaded, report.distinct, "everything fits in 1 MiB");
    let tables = Arc::new(tables);
    let mut remote = m.clone();
    remote.set_row_source(tables.clone()).unwrap();
    assert_eq!(
        logit_bits(&remote, &calib).unwrap(),
        logit_bits(&m, &calib).unwrap()
    );
    assert_eq!(tables.metrics().hit_ratio(), Some(1.0));
    assert_eq!(tables.metrics().fetched_rows.get(), 0);
}
