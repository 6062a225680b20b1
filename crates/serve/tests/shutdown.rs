//! Graceful shutdown: readiness turns false at once, every accepted request is answered, then
//! the server stops and refuses new connections.

mod common;

use std::sync::Arc;

use common::http::{assert_solo_logits, options, request, start, wait_queued};
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
                assert_solo_logits(a, &model, &random_batch(&config, 3, i), "s");
            })
        })
        .collect();
    wait_queued(&lv, 8);
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
