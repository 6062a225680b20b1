//! The local hot-row cache: bounded bytes, W-TinyLFU admission (Einziger, Friedman, Manes,
//! "TinyLFU: A Highly Efficient Cache Admission Policy", 2017; the policy of Caffeine).
//!
//! Each shard keeps a small LRU **window** (1% of the bytes) in front of a segmented-LRU
//! **main** area (probation + protected, 80% of main). A new row enters the window; the row the
//! window pushes out may enter main only if a count-min sketch of recent accesses says it is
//! used more often than the row main would evict for it. One-off rows (a scan) therefore never
//! displace the hot set, where a plain LRU ([`Policy::Lru`], kept for comparison) thrashes on
//! Zipf traffic mixed with scans. The sketch halves its counters every `10 × width` accesses,
//! so frequencies follow a drifting workload.
//!
//! Every entry is charged its bytes plus [`ENTRY_OVERHEAD`] against the capacity.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes charged per entry on top of its row bytes (index, links, allocation header).
pub const ENTRY_OVERHEAD: usize = 48;

/// Shards of the cache (each its own lock).
const SHARDS: usize = 16;

/// The eviction/admission policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Window LRU + frequency-gated segmented LRU (the default).
    WTinyLfu,
    /// Plain LRU over the whole capacity (for comparison).
    Lru,
}

/// Identifies a row: table and row id.
#[inline]
fn key_of(table: usize, row: u64) -> u64 {
    ((table as u64) << 40) ^ row
}

/// splitmix64's finalizer.
#[inline]
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A count-min sketch of 4 rows of saturating 4-bit counters (held in bytes), with aging.
#[derive(Debug)]
struct Sketch {
    rows: [Vec<u8>; 4],
    mask: usize,
    additions: usize,
    sample: usize,
}

impl Sketch {
    fn new(expected_entries: usize) -> Sketch {
        let width = expected_entries.clamp(1024, 1 << 22).next_power_of_two();
        Sketch {
            rows: std::array::from_fn(|_| vec![0u8; width]),
            mask: width - 1,
            additions: 0,
            sample: 10 * width,
        }
    }

    #[inline]
    fn index(&self, h: u64, i: usize) -> usize {
        (mix(h.wrapping_add(0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1))) as usize)
            & self.mask
    }

    fn frequency(&self, h: u64) -> u8 {
        (0..4)
            .map(|i| self.rows[i][self.index(h, i)])
            .min()
            .unwrap_or(0)
    }

    fn add(&mut self, h: u64, times: u8) {
        for i in 0..4 {
            let j = self.index(h, i);
            let c = &mut self.rows[i][j];
            *c = c.saturating_add(times).min(15);
        }
        self.additions += usize::from(times);
        if self.additions >= self.sample {
            for row in &mut self.rows {
                for c in row.iter_mut() {
                    *c >>= 1;
                }
            }
            self.additions /= 2;
        }
    }
}

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seg {
    Window = 0,
    Probation = 1,
    Protected = 2,
}

#[derive(Debug)]
struct Entry {
    key: u64,
    data: Box<[u8]>,
    prev: u32,
    next: u32,
    seg: Seg,
}

impl Entry {
    fn cost(&self) -> usize {
        self.data.len() + ENTRY_OVERHEAD
    }
}

/// A doubly linked list through the slab; `head` is the most recently used.
#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
    bytes: usize,
}

impl Default for List {
    fn default() -> Self {
        List {
            head: NIL,
            tail: NIL,
            bytes: 0,
        }
    }
}

#[derive(Debug)]
struct Shard {
    policy: Policy,
    map: HashMap<u64, u32>,
    slab: Vec<Entry>,
    free: Vec<u32>,
    lists: [List; 3],
    capacity: usize,
    window_cap: usize,
    main_cap: usize,
    protected_cap: usize,
    sketch: Sketch,
}

impl Shard {
    fn new(policy: Policy, capacity: usize) -> Shard {
        let window_cap = match policy {
            Policy::Lru => capacity,
            Policy::WTinyLfu => capacity / 100,
        };
        let main_cap = capacity - window_cap;
        Shard {
            policy,
            map: HashMap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            lists: [List::default(); 3],
            capacity,
            window_cap,
            main_cap,
            protected_cap: main_cap / 5 * 4,
            sketch: Sketch::new(capacity / (64 + ENTRY_OVERHEAD)),
        }
    }

    fn bytes(&self) -> usize {
        self.lists.iter().map(|l| l.bytes).sum()
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next, seg, cost) = {
            let e = &self.slab[i as usize];
            (e.prev, e.next, e.seg, e.cost())
        };
        let list = &mut self.lists[seg as usize];
        if prev == NIL {
            list.head = next;
        } else {
            self.slab[prev as usize].next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.slab[next as usize].prev = prev;
        }
        list.bytes -= cost;
    }

    fn push_front(&mut self, i: u32, seg: Seg) {
        let head = self.lists[seg as usize].head;
        let cost = {
            let e = &mut self.slab[i as usize];
            e.prev = NIL;
            e.next = head;
            e.seg = seg;
            e.cost()
        };
        if head != NIL {
            self.slab[head as usize].prev = i;
        }
        let list = &mut self.lists[seg as usize];
        list.head = i;
        if list.tail == NIL {
            list.tail = i;
        }
        list.bytes += cost;
    }

    fn remove(&mut self, i: u32) {
        self.unlink(i);
        let e = &mut self.slab[i as usize];
        self.map.remove(&e.key);
        e.data = Box::new([]);
        self.free.push(i);
    }

    fn alloc(&mut self, key: u64, data: &[u8]) -> u32 {
        let e = Entry {
            key,
            data: data.into(),
            prev: NIL,
            next: NIL,
            seg: Seg::Window,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = e;
                i
            }
            None => {
                self.slab.push(e);
                (self.slab.len() - 1) as u32
            }
        };
        self.map.insert(key, i);
        i
    }

    /// Looks `key` up (counting the access); on a hit copies the row into `out`.
    fn get(&mut self, key: u64, h: u64, out: &mut [u8]) -> bool {
        self.sketch.add(h, 1);
        let Some(&i) = self.map.get(&key) else {
            return false;
        };
        let e = &self.slab[i as usize];
        if e.data.len() != out.len() {
            return false;
        }
        out.copy_from_slice(&e.data);
        let seg = e.seg;
        self.unlink(i);
        match seg {
            Seg::Window | Seg::Protected => self.push_front(i, seg),
            Seg::Probation => {
                self.push_front(i, Seg::Protected);
                while self.lists[Seg::Protected as usize].bytes > self.protected_cap {
                    let t = self.lists[Seg::Protected as usize].tail;
                    self.unlink(t);
                    self.push_front(t, Seg::Probation);
                }
            }
        }
        true
    }

    /// Offers a row that just missed.
    fn insert(&mut self, key: u64, data: &[u8]) {
        if self.map.contains_key(&key) || data.len() + ENTRY_OVERHEAD > self.capacity {
            return;
        }
        let i = self.alloc(key, data);
        self.push_front(i, Seg::Window);
        match self.policy {
            Policy::Lru => {
                while self.bytes() > self.capacity {
                    let t = self.lists[Seg::Window as usize].tail;
                    self.remove(t);
                }
            }
            Policy::WTinyLfu => {
                while self.lists[Seg::Window as usize].bytes > self.window_cap {
                    let c = self.lists[Seg::Window as usize].tail;
                    self.unlink(c);
                    self.admit(c);
                }
            }
        }
    }

    /// Main-area bytes.
    fn main_bytes(&self) -> usize {
        self.lists[Seg::Probation as usize].bytes + self.lists[Seg::Protected as usize].bytes
    }

    /// The window's evictee `c` (unlinked) enters main if it is used more often than each row
    /// main must evict to make room; otherwise it is dropped.
    fn admit(&mut self, c: u32) {
        let cost = self.slab[c as usize].cost();
        let fc = self.sketch.frequency(mix(self.slab[c as usize].key));
        while self.main_bytes() + cost > self.main_cap {
            let victim = match self.lists[Seg::Probation as usize].tail {
                NIL => self.lists[Seg::Protected as usize].tail,
                t => t,
            };
            if victim == NIL {
                break;
            }
            let fv = self.sketch.frequency(mix(self.slab[victim as usize].key));
            if fc <= fv {
                // Lost: the candidate goes (it is linked nowhere; push it so remove unlinks it).
                self.push_front(c, Seg::Probation);
                self.remove(c);
                return;
            }
            self.remove(victim);
        }
        if self.main_bytes() + cost > self.main_cap {
            self.push_front(c, Seg::Probation);
            self.remove(c);
            return;
        }
        self.push_front(c, Seg::Probation);
    }

    /// Puts a known-hot row straight into main (preloading), counting `times` accesses.
    fn preload(&mut self, key: u64, h: u64, data: &[u8], times: u8) -> bool {
        self.sketch.add(h, times);
        if self.map.contains_key(&key) {
            return true;
        }
        let cost = data.len() + ENTRY_OVERHEAD;
        let (seg, cap) = match self.policy {
            Policy::Lru => (Seg::Window, self.capacity),
            Policy::WTinyLfu => (Seg::Protected, self.main_cap),
        };
        let used = match self.policy {
            Policy::Lru => self.bytes(),
            Policy::WTinyLfu => self.main_bytes(),
        };
        if used + cost > cap {
            return false;
        }
        let i = self.alloc(key, data);
        // Protected first; past its share, the rest go to probation.
        let seg = if seg == Seg::Protected
            && self.lists[Seg::Protected as usize].bytes + cost > self.protected_cap
        {
            Seg::Probation
        } else {
            seg
        };
        self.push_front(i, seg);
        true
    }
}

/// A byte-bounded, sharded row cache shared by every thread.
#[derive(Debug)]
pub struct RowCache {
    shards: Vec<Mutex<Shard>>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl RowCache {
    /// A cache of at most `capacity` bytes (0: no cache, every lookup misses).
    pub fn new(capacity: usize, policy: Policy) -> RowCache {
        RowCache::with_shards(capacity, policy, SHARDS)
    }

    /// Like [`RowCache::new`] with `shards` shards (a power of two; tests use 1).
    pub fn with_shards(capacity: usize, policy: Policy, shards: usize) -> RowCache {
        let shards = shards.max(1).next_power_of_two();
        let per = capacity / shards;
        RowCache {
            shards: (0..shards)
                .map(|_| Mutex::new(Shard::new(policy, per)))
                .collect(),
            capacity: per * shards,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, h: u64) -> std::sync::MutexGuard<'_, Shard> {
        let i = (h >> 58) as usize & (self.shards.len() - 1);
        // A panic while holding a shard lock leaves consistent data (no unsafe, no partial
        // link updates across the panic points), so a poisoned lock is taken over.
        self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Looks up row `row` of `table`, copying it into `out` (its length is the row's bytes) on a
    /// hit. Every lookup counts as an access for admission.
    pub fn get(&self, table: usize, row: u64, out: &mut [u8]) -> bool {
        if self.capacity == 0 {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let key = key_of(table, row);
        let h = mix(key);
        let hit = self.shard(h).get(key, h, out);
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// Offers a row fetched after a miss; the policy decides whether it stays.
    pub fn insert(&self, table: usize, row: u64, data: &[u8]) {
        if self.capacity == 0 {
            return;
        }
        let key = key_of(table, row);
        let h = mix(key);
        self.shard(h).insert(key, data);
    }

    /// Puts a row known to be hot (seen `times` times on calibration data) straight into the
    /// main area. Returns false when its shard is full.
    pub fn preload(&self, table: usize, row: u64, data: &[u8], times: usize) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let key = key_of(table, row);
        let h = mix(key);
        self.shard(h).preload(key, h, data, times.min(15) as u8)
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes held (rows plus per-entry overhead).
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.bytes()))
            .sum()
    }

    /// Rows held.
    pub fn entries(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.map.len()))
            .sum()
    }

    /// Hits and misses so far.
    pub fn hits_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}
