//! Slot routing for the row-fetch path: one multiplexed connection per node, pipelines sent
//! straight to the slot owner, `MOVED` and `ASK` followed here.
//!
//! The `redis` crate's async cluster client (used for `push`/`verify`/`gc`) repairs its
//! connections under one lock: while a node is down, every request waits behind its reconnect
//! attempts, including requests for slots of healthy nodes (measured: all requests timed out
//! while one of three masters was killed). The fetch path therefore routes by itself: a node
//! that is down or slow only delays the pipelines sent to it, each bounded by the caller's
//! deadline; a failed node connection is dropped and reopened by the next request for it.
//!
//! `MOVED slot addr` (the slot now lives elsewhere, after resharding) refreshes the slot map
//! from `CLUSTER SLOTS` and resends the pipeline. `ASK slot addr` (the slot is migrating and the
//! key has already moved) resends the affected commands to `addr`, each preceded by `ASKING`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ServerErrorKind, Value};

use crate::{Result, TablesError};

/// Redirections followed per pipeline before giving up.
const MAX_REDIRECTS: usize = 8;

/// Minimum time between two slot-map refreshes.
const REFRESH_INTERVAL: Duration = Duration::from_millis(50);

/// The slot of `key` (CRC16/XMODEM of its hash tag, or of the whole key, mod 16384).
pub fn key_slot(key: &[u8]) -> u16 {
    let tag = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    let mut crc: u16 = 0;
    for &b in tag {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// Slot ranges and their primaries (`host:port`).
#[derive(Clone, Debug, Default)]
struct SlotMap {
    ranges: Vec<(u16, u16, String)>,
}

impl SlotMap {
    fn owner(&self, slot: u16) -> Option<&str> {
        self.ranges
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&slot))
            .map(|r| r.2.as_str())
    }
}

/// Routes pipelines to slot owners.
#[derive(Debug)]
pub struct Router {
    seeds: Vec<String>,
    slots: RwLock<Arc<SlotMap>>,
    last_refresh: Mutex<Option<Instant>>,
    conns: Mutex<HashMap<String, MultiplexedConnection>>,
    config: AsyncConnectionConfig,
}

fn io_error(op: &str, detail: String) -> TablesError {
    TablesError::redis(
        op.to_string(),
        redis::RedisError::from((redis::ErrorKind::Io, "cluster routing", detail)),
    )
}

impl Router {
    /// A router for the cluster reached through `seeds` (`redis://host:port` or `host:port`).
    pub fn new(seeds: &[String], connect_timeout: Duration, response_timeout: Duration) -> Router {
        Router {
            seeds: seeds
                .iter()
                .map(|s| {
                    s.trim_start_matches("redis://")
                        .trim_end_matches('/')
                        .to_string()
                })
                .collect(),
            slots: RwLock::new(Arc::new(SlotMap::default())),
            last_refresh: Mutex::new(None),
            conns: Mutex::new(HashMap::new()),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(response_timeout)),
        }
    }

    fn slot_map(&self) -> Arc<SlotMap> {
        self.slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn forget(&self, addr: &str) {
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(addr);
    }

    async fn conn(&self, addr: &str) -> Result<MultiplexedConnection> {
        if let Some(c) = self
            .conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(addr)
        {
            return Ok(c.clone());
        }
        let op = format!("connecting to {addr}");
        let client = redis::Client::open(format!("redis://{addr}"))
            .map_err(|e| TablesError::redis(op.clone(), e))?;
        let c = client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
            .map_err(|e| TablesError::redis(op, e))?;
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Reloads the slot map from `CLUSTER SLOTS` of the first node that answers (at most once
    /// per [`REFRESH_INTERVAL`] unless `force`).
    async fn refresh(&self, force: bool) -> Result<()> {
        {
            let mut last = self
                .last_refresh
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !force && last.is_some_and(|t| t.elapsed() < REFRESH_INTERVAL) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let mut candidates: Vec<String> =
            self.slot_map().ranges.iter().map(|r| r.2.clone()).collect();
        candidates.extend(self.seeds.iter().cloned());
        candidates.dedup();
        let mut last_err = None;
        for addr in candidates {
            let attempt = async {
                let mut c = self.conn(&addr).await?;
                let v: Value = redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query_async(&mut c)
                    .await
                    .map_err(|e| TablesError::redis(format!("CLUSTER SLOTS on {addr}"), e))?;
                parse_slots(&v, &addr)
            };
            match attempt.await {
                Ok(map) if !map.ranges.is_empty() => {
                    *self
                        .slots
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(map);
                    return Ok(());
                }
                Ok(_) => last_err = Some(io_error("CLUSTER SLOTS", format!("{addr}: no slots"))),
                Err(e) => {
                    self.forget(&addr);
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| io_error("CLUSTER SLOTS", "no seed node".into())))
    }

    /// Sends `cmds` (all keys in one slot) as one pipeline to the slot's owner, following
    /// redirections; returns one reply per command (nil as `None`).
    pub async fn pipeline(&self, slot: u16, cmds: &[redis::Cmd]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut replies: Vec<Option<Option<Vec<u8>>>> = vec![None; cmds.len()];
        // Commands still to send, and where: None = the owner in the slot map.
        let mut pending: Vec<usize> = (0..cmds.len()).collect();
        let mut ask_to: Option<String> = None;
        for _ in 0..MAX_REDIRECTS {
            let addr = match &ask_to {
                Some(a) => a.clone(),
                None => {
                    if self.slot_map().owner(slot).is_none() {
                        self.refresh(true).await?;
                    }
                    self.slot_map()
                        .owner(slot)
                        .map(String::from)
                        .ok_or_else(|| io_error("routing", format!("no node serves slot {slot}")))?
                }
            };
            let mut c = self.conn(&addr).await?;
            let mut p = redis::pipe();
            p.ignore_errors();
            for &i in &pending {
                if ask_to.is_some() {
                    p.cmd("ASKING").ignore();
                }
                p.add_command(cmds[i].clone());
            }
            let vals: Vec<Value> = match p.query_async(&mut c).await {
                Ok(v) => v,
                Err(e) => {
                    // The connection is suspect (node down, timed out): reopen it next time, and
                    // let the slot map catch up in case the topology changed.
                    self.forget(&addr);
                    let _ = self.refresh(false).await;
                    return Err(TablesError::redis(format!("pipeline to {addr}"), e));
                }
            };
            let mut moved = false;
            let mut ask: Option<String> = None;
            let mut still = Vec::new();
            for (&i, v) in pending.iter().zip(vals) {
                match v {
                    Value::BulkString(b) => replies[i] = Some(Some(b)),
                    Value::Nil => replies[i] = Some(None),
                    Value::ServerError(e) => match e.kind() {
                        Some(ServerErrorKind::Moved) => {
                            moved = true;
                            still.push(i);
                        }
                        Some(ServerErrorKind::Ask) => {
                            let target = e.details().and_then(|d| d.split_whitespace().nth(1));
                            ask = target.map(String::from);
                            still.push(i);
                        }
                        Some(ServerErrorKind::TryAgain) => still.push(i),
                        _ => {
                            return Err(TablesError::redis(
                                format!("reply from {addr}"),
                                redis::RedisError::from(e),
                            ));
                        }
                    },
                    other => {
                        return Err(io_error(
                            "reply",
                            format!("{addr}: unexpected reply {other:?}"),
                        ));
                    }
                }
            }
            if still.is_empty() {
                return Ok(replies.into_iter().map(Option::unwrap_or_default).collect());
            }
            pending = still;
            if moved {
                ask_to = None;
                self.refresh(true).await?;
            } else if ask.is_some() {
                ask_to = ask;
            } else {
                ask_to = None;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Err(io_error(
            "routing",
            format!("slot {slot}: more than {MAX_REDIRECTS} redirections"),
        ))
    }
}

impl Router {
    /// `PING` to every primary of the slot map (refreshed first): whether the whole store
    /// answers.
    pub async fn ping_all(&self) -> Result<()> {
        self.refresh(true).await?;
        let mut nodes: Vec<String> = self.slot_map().ranges.iter().map(|r| r.2.clone()).collect();
        nodes.sort();
        nodes.dedup();
        let pings = nodes.iter().map(|addr| async move {
            let mut c = self.conn(addr).await?;
            let r: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut c).await;
            r.map(|_| ()).map_err(|e| {
                self.forget(addr);
                TablesError::redis(format!("PING {addr}"), e)
            })
        });
        futures_util::future::try_join_all(pings).await.map(|_| ())
    }
}

/// Parses a `CLUSTER SLOTS` reply (`[[start, end, [host, port, id], replicas...], ...]`); an
/// empty host means the node that answered.
fn parse_slots(v: &Value, answered: &str) -> Result<SlotMap> {
    let bad = || {
        io_error(
            "CLUSTER SLOTS",
            format!("{answered}: unexpected reply {v:?}"),
        )
    };
    let Value::Array(items) = v else {
        return Err(bad());
    };
    let answered_host = answered.rsplit_once(':').map_or(answered, |(h, _)| h);
    let mut ranges = Vec::with_capacity(items.len());
    for it in items {
        let Value::Array(f) = it else {
            return Err(bad());
        };
        let (Some(Value::Int(a)), Some(Value::Int(b)), Some(Value::Array(node))) =
            (f.first(), f.get(1), f.get(2))
        else {
            return Err(bad());
        };
        let host = match node.first() {
            Some(Value::BulkString(h)) if !h.is_empty() => String::from_utf8_lossy(h).to_string(),
            _ => answered_host.to_string(),
        };
        let Some(Value::Int(port)) = node.get(1) else {
            return Err(bad());
        };
        ranges.push((*a as u16, *b as u16, format!("{host}:{port}")));
    }
    Ok(SlotMap { ranges })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_cluster_spec() {
        // Examples of the Redis Cluster specification / CLUSTER KEYSLOT.
        assert_eq!(key_slot(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(key_slot(b"{}x"), key_slot(b"{}x"));
    }

    #[test]
    fn slot_replies_parse() {
        let node = |h: &str, p| {
            Value::Array(vec![
                Value::BulkString(h.as_bytes().to_vec()),
                Value::Int(p),
            ])
        };
        let v = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7101),
            ]),
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node("", 7102)]),
        ]);
        let m = parse_slots(&v, "10.0.0.1:7102").unwrap();
        assert_eq!(m.owner(0), Some("127.0.0.1:7101"));
        assert_eq!(m.owner(9000), Some("10.0.0.1:7102"));
        assert!(parse_slots(&Value::Int(3), "x:1").is_err());
    }
}
