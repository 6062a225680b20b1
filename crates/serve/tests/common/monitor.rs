//! Helpers of the monitor's tests: labels drawn from a model's probabilities, feedback and
//! accuracy calls, bounded waiting.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use quantrec_kernels::rng::Rng;
use serde_json::{Value, json};

use super::http::{Resp, get, post_json};

/// Click labels drawn with the given probabilities (so the model that gave them is the truth).
pub fn labels_for(probs: &[f32], seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    probs
        .iter()
        .map(|&p| f32::from(u8::from((rng.uniform() as f32) < p)))
        .collect()
}

/// `POST /v2/models/<model>/feedback` with `(id, labels)` entries.
pub fn feedback(addr: SocketAddr, model: &str, entries: &[(String, Vec<f32>)]) -> Resp {
    let body = json!({"feedback": entries
        .iter()
        .map(|(id, labels)| json!({"id": id, "labels": labels}))
        .collect::<Vec<_>>()});
    post_json(addr, &format!("/v2/models/{model}/feedback"), &body)
}

/// `GET /v2/models/<model>/accuracy` (must answer 200).
pub fn accuracy(addr: SocketAddr, model: &str) -> Value {
    let r = get(addr, &format!("/v2/models/{model}/accuracy"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// The report of `version` in an accuracy answer.
pub fn version_report<'a>(acc: &'a Value, version: &str) -> Option<&'a Value> {
    acc["versions"]
        .as_array()?
        .iter()
        .find(|v| v["version"] == version)
}

/// Polls `f` every 20 ms until it gives a value; panics after `limit` naming `what`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
