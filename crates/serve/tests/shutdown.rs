//! Graceful shutdown: readiness turns false at once, every accepted request is answered, then
//! the server stops and refuses new connections.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::{options, post_json, request, start};
use common::*;
use quantrec_model::Plan;
use quantrec_model::artifact::Artifact;

#[test]
fn graceful_shutdown_answers_every_accepted_request() {
    let dir = temp_dir("shutdown");
    let config = small_config();
    let bytes = artifact_bytes(&config, &Plan::f32(&config), 4);
    write_version(&dir, "m", 1, &bytes);
    let model = Arc::new(Artifact::from_bytes(bytes).unwrap().model);
    let mut opts = options(&dir);
    opts.max_delay_us = 500_000;
    opts.max_batch = 100_000;
    let mut server = start(opts);
    let a = server.http_addr;
    let lv = server.state.repo.version("m", None).unwrap();
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (model, config) = (model.clone(), config.clone());
            std::thread::spawn(move || {
                let b = random_batch(&config, 3, i);
                let r = post_json(a, "/v2/models/m/infer", &infer_json(&b, "s"));
                assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                assert_eq!(
                    bits(&outputs_of(&r.json()).0),
                    bits(&expected(&model, &b).0)
                );
            })
        })
        .collect();
    let t0 = Instant::now();
    while lv.queue_depth() < 8 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "requests never queued"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(lv);
    server.begin_shutdown();
    assert!(!server.state.is_ready());
    for c in clients {
        c.join().expect("an accepted request was lost");
    }
    server.join().unwrap();
    assert!(
        request(a, "GET", "/v2/health/live", &[], b"").is_err(),
        "still accepting"
    );
}
