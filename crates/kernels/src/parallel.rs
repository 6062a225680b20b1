//! How many threads a kernel call may spread over: the current rayon pool's, capped for the
//! calling thread by [`with_max_threads`].
//!
//! A server that runs several model calls at once does more rows per second when each call keeps
//! to one thread than when every call splits over the whole pool. Kernels ask [`threads`] instead
//! of `rayon::current_num_threads()`, so a call run under `with_max_threads(1, ..)` never leaves
//! the calling thread. Results never depend on the thread count (every kernel's parallel split is
//! bit-identical to its single-thread run), so the cap changes speed only.

use std::cell::Cell;

thread_local! {
    static MAX_THREADS: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Threads a kernel called on this thread may use: the current rayon pool's threads, at most the
/// cap set by [`with_max_threads`] (at least 1).
pub fn threads() -> usize {
    rayon::current_num_threads()
        .min(MAX_THREADS.with(Cell::get))
        .max(1)
}

/// Runs `f` with kernel calls made on this thread capped to `max` threads (at least 1). With a
/// cap of 1, no kernel spawns parallel work, so all of `f` runs on this thread; a larger cap
/// applies to the decisions taken on this thread. The previous cap is restored afterwards, also
/// when `f` panics.
pub fn with_max_threads<R>(max: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            MAX_THREADS.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(MAX_THREADS.with(|c| c.replace(max.max(1))));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_applies_inside_and_is_restored_after() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("pool");
        pool.install(|| {
            assert_eq!(threads(), 3);
            assert_eq!(with_max_threads(1, threads), 1);
            assert_eq!(with_max_threads(2, || with_max_threads(8, threads)), 3);
            assert_eq!(with_max_threads(0, threads), 1);
            let caught = std::panic::catch_unwind(|| with_max_threads(1, || panic!("inside")));
            assert!(caught.is_err());
            assert_eq!(threads(), 3);
        });
    }
}
