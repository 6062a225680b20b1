//! The hot-row cache on its own (no cluster): byte bound, correctness of hits, W-TinyLFU's
//! resistance to scans on Zipf traffic where a plain LRU thrashes. Deterministic (fixed seeds).

use quantrec_kernels::rng::Rng;
use quantrec_tables::cache::{ENTRY_OVERHEAD, Policy, RowCache};
use quantrec_tables::zipf::Zipf;

const ROW: usize = 36;

fn row(table: usize, id: u64) -> Vec<u8> {
    (0..ROW)
        .map(|i| (id as usize * 7 + table * 13 + i) as u8)
        .collect()
}

/// Hit ratio on the Zipf requests of a trace in which every `scan_every`-th request is followed
/// by `scan_len` one-off rows (never seen again).
fn zipf_hit_ratio(policy: Policy, capacity_rows: usize, scan_every: usize, scan_len: usize) -> f64 {
    let cache = RowCache::with_shards(capacity_rows * (ROW + ENTRY_OVERHEAD), policy, 1);
    let z = Zipf::new(20_000, 1.0);
    let mut rng = Rng::new(42);
    let mut out = [0u8; ROW];
    let (mut hits, mut total) = (0usize, 0usize);
    let mut scan_id = 1u64 << 30;
    for i in 0..200_000 {
        let id = z.sample(&mut rng) as u64;
        let measured = i >= 20_000;
        if cache.get(0, id, &mut out) {
            assert_eq!(
                out.as_slice(),
                row(0, id).as_slice(),
                "a hit returns the row"
            );
            hits += usize::from(measured);
        } else {
            cache.insert(0, id, &row(0, id));
        }
        total += usize::from(measured);
        if i % scan_every == 0 {
            for _ in 0..scan_len {
                scan_id += 1;
                if !cache.get(1, scan_id, &mut out) {
                    cache.insert(1, scan_id, &row(1, scan_id));
                }
            }
        }
        assert!(cache.bytes() <= cache.capacity());
    }
    hits as f64 / total as f64
}

#[test]
fn w_tinylfu_resists_scans_where_lru_thrashes() {
    let lru = zipf_hit_ratio(Policy::Lru, 500, 10, 20);
    let tiny = zipf_hit_ratio(Policy::WTinyLfu, 500, 10, 20);
    eprintln!("Zipf hit ratio with scans: LRU {lru:.3}, W-TinyLFU {tiny:.3}");
    // With two one-off rows per Zipf request, LRU keeps mostly scan rows.
    assert!(tiny > lru + 0.15, "W-TinyLFU {tiny:.3} vs LRU {lru:.3}");
    assert!(tiny > 0.35, "W-TinyLFU {tiny:.3}");
}

#[test]
fn w_tinylfu_is_at_least_as_good_as_lru_on_plain_zipf() {
    let lru = zipf_hit_ratio(Policy::Lru, 500, usize::MAX, 0);
    let tiny = zipf_hit_ratio(Policy::WTinyLfu, 500, usize::MAX, 0);
    eprintln!("Zipf hit ratio without scans: LRU {lru:.3}, W-TinyLFU {tiny:.3}");
    assert!(tiny >= lru - 0.01, "W-TinyLFU {tiny:.3} vs LRU {lru:.3}");
}

#[test]
fn the_byte_bound_holds_and_a_zero_cache_never_hits() {
    for policy in [Policy::Lru, Policy::WTinyLfu] {
        let cache = RowCache::new(64 * 1024, policy);
        let mut out = [0u8; ROW];
        for id in 0..50_000u64 {
            if !cache.get(2, id % 3000, &mut out) {
                cache.insert(2, id % 3000, &row(2, id % 3000));
            }
            assert!(cache.bytes() <= cache.capacity(), "{policy:?}");
        }
        assert!(cache.entries() > 0);
        assert_eq!(cache.entries() * (ROW + ENTRY_OVERHEAD), cache.bytes());
        let (hits, misses) = cache.hits_misses();
        assert_eq!(hits + misses, 50_000);
    }
    let none = RowCache::new(0, Policy::WTinyLfu);
    let mut out = [0u8; ROW];
    none.insert(0, 1, &row(0, 1));
    assert!(!none.get(0, 1, &mut out));
    assert!(!none.preload(0, 1, &row(0, 1), 9));
    assert_eq!(none.bytes(), 0);
    // A row larger than the whole cache is not kept.
    let tiny = RowCache::with_shards(ROW, Policy::WTinyLfu, 1);
    tiny.insert(0, 1, &row(0, 1));
    assert_eq!(tiny.entries(), 0);
}

#[test]
fn preloaded_rows_survive_a_scan() {
    let cache = RowCache::with_shards(100 * (ROW + ENTRY_OVERHEAD), Policy::WTinyLfu, 1);
    for id in 0..50 {
        assert!(cache.preload(0, id, &row(0, id), 15));
    }
    let mut out = [0u8; ROW];
    for id in 1000..6000u64 {
        if !cache.get(0, id, &mut out) {
            cache.insert(0, id, &row(0, id));
        }
    }
    let kept = (0..50).filter(|&id| cache.get(0, id, &mut out)).count();
    assert!(kept >= 45, "{kept} of 50 hot rows kept");
}
