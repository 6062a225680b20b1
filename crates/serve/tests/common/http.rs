//! A minimal blocking HTTP/1.1 client (one connection per request) and a test server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use quantrec_data::Batch;
use quantrec_serve::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use quantrec_serve::stats::StatsSnapshot;
use quantrec_serve::version::LoadedVersion;
use quantrec_serve::{ServeOptions, Server};

/// A response: status, headers (lower-case names) and body.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends one request and reads the whole response (bounded by a 30 s socket timeout).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let text = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = text.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(p) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..p]).trim(), 16).unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[p + 2..p + 2 + n]);
        b = &b[p + 4 + n..];
    }
}

pub fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, &[], b"").unwrap()
}

pub fn post_json(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Resp {
    let b = serde_json::to_vec(body).unwrap();
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json".into())],
        &b,
    )
    .unwrap()
}

/// Options for a test server on loopback with OS-assigned ports.
pub fn options(dir: &Path) -> ServeOptions {
    let mut o = ServeOptions::new(dir.to_path_buf());
    o.http_port = 0;
    o.grpc_port = Some(0);
    o.threads = 2;
    o.max_delay_us = 2000;
    o
}

pub fn start(opts: ServeOptions) -> Server {
    Server::start(opts).expect("server starts")
}

/// A gRPC client of `server`'s gRPC port, connected within `limit`.
pub async fn grpc_connect(
    server: &Server,
    limit: Duration,
) -> GrpcInferenceServiceClient<tonic::transport::Channel> {
    let url = format!("http://{}", server.grpc_addr.unwrap());
    tokio::time::timeout(limit, GrpcInferenceServiceClient::connect(url))
        .await
        .unwrap()
        .unwrap()
}

/// The statistics of the latest version of `model` on `server`.
pub fn stats(server: &Server, model: &str) -> StatsSnapshot {
    server
        .state
        .repo
        .version(model, None)
        .unwrap()
        .stats
        .snapshot()
}

/// Posts `b` to model "m" over JSON as request `id` and asserts it is answered with the logits
/// `model` gives the batch alone, bit for bit.
pub fn assert_solo_logits(addr: SocketAddr, model: &quantrec_model::Model, b: &Batch, id: &str) {
    let r = post_json(addr, "/v2/models/m/infer", &super::infer_json(b, id));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        super::bits(&super::outputs_of(&r.json()).0),
        super::bits(&super::expected(model, b).0)
    );
}

/// Waits (at most 10 s, else panics) until at least `n` requests wait in `version`'s queue.
pub fn wait_queued(version: &LoadedVersion, n: usize) {
    let t0 = Instant::now();
    while version.queue_depth() < n {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "requests never queued"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
