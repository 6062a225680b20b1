//! Hot reload on a real server: 20 reloads during a load run with zero failed requests (each
//! answer matches the version that gave it); corrupt versions (truncated, NaN weights, wrong
//! shapes) are refused while the old version serves; the poller picks up new version folders.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::http::{get, options, post_json, request, start};
use common::*;
use quantrec_model::artifact::Artifact;
use quantrec_model::{Model, Plan};
use sha2::{Digest, Sha256};

fn model_of(bytes: &[u8]) -> Model {
    Artifact::from_bytes(bytes.to_vec()).unwrap().model
}

#[test]
fn twenty_hot_reloads_under_load_fail_no_request() {
    let dir = temp_dir("reload20");
    let config = small_config();
    let plan = Plan::f32(&config);
    let mut models = vec![None];
    for v in 1..=21u64 {
        models.push(Some(model_of(&artifact_bytes(&config, &plan, 100 + v))));
    }
    let models = Arc::new(models);
    write_version(&dir, "m", 1, &artifact_bytes(&config, &plan, 101));
    let server = start(options(&dir));
    let a = server.http_addr;
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (stop, answered, models, config) = (
                stop.clone(),
                answered.clone(),
                models.clone(),
                config.clone(),
            );
            std::thread::spawn(move || {
                let mut i = 0u64;
                let mut seen = std::collections::BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    let b = random_batch(&config, 4, c * 1000 + i);
                    let r = post_json(a, "/v2/models/m/infer", &infer_json(&b, "l"));
                    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                    let v = r.json();
                    let ver: usize = v["model_version"].as_str().unwrap().parse().unwrap();
                    let (l, _) = outputs_of(&v);
                    let want = expected(models[ver].as_ref().unwrap(), &b).0;
                    assert_eq!(bits(&l), bits(&want), "answer of version {ver}");
                    seen.insert(ver);
                    answered.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                seen
            })
        })
        .collect();
    for v in 2..=21u64 {
        write_version(&dir, "m", v, &artifact_bytes(&config, &plan, 100 + v));
        let r = request(a, "POST", "/v2/repository/models/m/load", &[], b"").unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            get(a, "/v2/models/m").json()["versions"],
            serde_json::json!([v.to_string()])
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let mut seen = std::collections::BTreeSet::new();
    for c in clients {
        seen.extend(c.join().expect("a client saw a failed request"));
    }
    assert!(answered.load(Ordering::Relaxed) > 40);
    assert!(seen.len() > 2, "versions answering: {seen:?}");
    assert!(seen.contains(&21));
    assert_eq!(server.state.metrics().event_count("m", "load"), 21);
    drop(server);
}

/// The artifact with one f32 table value replaced by NaN and the data digest recomputed, so only
/// the value check can catch it.
fn with_nan_table(bytes: &[u8]) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let t0 = tensors.iter_mut().find(|t| t.0 == "tables.0").unwrap();
    t0.3[40..44].copy_from_slice(&f32::NAN.to_le_bytes());
    let mut h = Sha256::new();
    for (n, _, _, b) in &tensors {
        h.update((n.len() as u64).to_le_bytes());
        h.update(n.as_bytes());
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    }
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let mut md = meta.metadata().clone().unwrap();
    let mut j: serde_json::Value = serde_json::from_str(&md["quantrec"]).unwrap();
    j["data_sha256"] = serde_json::json!(digest);
    md.insert("quantrec".into(), j.to_string());
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, Some(md)).unwrap()
}

/// The artifact whose metadata claims 99 rows for table 0.
fn with_wrong_shape(bytes: &[u8]) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut md = meta.metadata().clone().unwrap();
    let mut j: serde_json::Value = serde_json::from_str(&md["quantrec"]).unwrap();
    j["config"]["tables"][0]["rows"] = serde_json::json!(99);
    md.insert("quantrec".into(), j.to_string());
    safetensors::serialize(st.tensors(), Some(md)).unwrap()
}

#[test]
fn corrupt_versions_are_refused_while_the_old_one_serves() {
    let dir = temp_dir("corrupt");
    let config = small_config();
    let plan = Plan::f32(&config);
    let good = artifact_bytes(&config, &plan, 1);
    let model = model_of(&good);
    write_version(&dir, "m", 1, &good);
    let server = start(options(&dir));
    let a = server.http_addr;
    let b = random_batch(&config, 3, 3);
    let want = bits(&expected(&model, &b).0);
    let newer = artifact_bytes(&config, &plan, 2);
    let corrupt: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            newer[..newer.len() / 2].to_vec(),
            "safetensors",
        ),
        ("nan", with_nan_table(&newer), "non-finite"),
        ("shape", with_wrong_shape(&newer), "tables.0"),
    ];
    for (i, (what, bytes, needle)) in corrupt.into_iter().enumerate() {
        let v = 2 + i as u64;
        write_version(&dir, "m", v, &bytes);
        let r = request(a, "POST", "/v2/repository/models/m/load", &[], b"").unwrap();
        assert_eq!(r.status, 400, "{what}");
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            msg.contains(needle) && msg.contains(&format!("version {v}")),
            "{what}: {msg}"
        );
        let r = post_json(a, "/v2/models/m/infer", &infer_json(&b, "x"));
        assert_eq!(r.status, 200, "{what}");
        assert_eq!(r.json()["model_version"], "1", "{what}");
        assert_eq!(bits(&outputs_of(&r.json()).0), want, "{what}");
        std::fs::remove_dir_all(dir.join("m").join(v.to_string())).unwrap();
    }
    assert_eq!(server.state.metrics().event_count("m", "failed_load"), 3);
    // The index says why a refused version is unavailable.
    write_version(&dir, "m", 7, b"not an artifact");
    let _ = request(a, "POST", "/v2/repository/models/m/load", &[], b"").unwrap();
    let idx = request(a, "POST", "/v2/repository/index", &[], b"")
        .unwrap()
        .json();
    let row = idx
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["version"] == "7")
        .unwrap()
        .clone();
    assert_eq!(row["state"], "UNAVAILABLE");
    assert!(row["reason"].as_str().unwrap().contains("refused"));
    // A good version then loads and serves.
    write_version(&dir, "m", 8, &newer);
    let r = request(a, "POST", "/v2/repository/models/m/load", &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = post_json(a, "/v2/models/m/infer", &infer_json(&b, "x"));
    assert_eq!(r.json()["model_version"], "8");
    drop(server);
}

#[test]
fn the_poller_loads_new_version_folders() {
    let dir = temp_dir("poll");
    let config = small_config();
    let plan = Plan::f32(&config);
    write_version(&dir, "m", 1, &artifact_bytes(&config, &plan, 1));
    let mut opts = options(&dir);
    opts.poll_secs = 1;
    let server = start(opts);
    let a = server.http_addr;
    write_version(&dir, "m", 2, &artifact_bytes(&config, &plan, 2));
    let t0 = Instant::now();
    loop {
        let v = get(a, "/v2/models/m").json();
        if v["versions"] == serde_json::json!(["2"]) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "poller never loaded version 2: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
}
