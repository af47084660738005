//! Work split over threads inside the native core (the caller has released the GIL).
//!
//! Small batches stay on the calling thread: spawning costs tens of microseconds. Decoding an
//! envelope costs about one, so a batch is split only from `SPLIT.min` items; checking a
//! signature costs ten to twenty, so signatures are split from `SIGNATURES.min` (a 90 %-duplicate
//! batch of 1,000 leaves ~100 to verify: on one thread that was 2 ms of the batch's latency).

/// When a batch is split, and how small its chunks may get.
#[derive(Clone, Copy, Debug)]
pub struct Split {
    /// Batches shorter than this run on the calling thread.
    pub min: usize,
    /// No chunk is smaller than this (a chunk of signatures is one batch equation).
    pub chunk: usize,
}

/// Per-item work of about a microsecond (decoding, hashing).
pub const SPLIT: Split = Split {
    min: 256,
    chunk: 64,
};
/// Signature checks.
pub const SIGNATURES: Split = Split { min: 64, chunk: 32 };
/// The most threads a Verifier may use.
pub const MAX_THREADS: usize = 64;

/// The machine's available parallelism, within 1 ..= MAX_THREADS.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_THREADS)
}

/// `f` applied to consecutive chunks of `items` on up to `threads` threads (the calling thread
/// takes the first), the results concatenated in order: the same output as `f(items)` whenever
/// `f` works item by item. A thread that cannot be started, or that failed, has its chunk redone
/// on the calling thread.
pub fn map_chunks<T, R, F>(items: &[T], threads: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&[T]) -> Vec<R> + Sync,
{
    map_split(items, threads, SPLIT, f)
}

/// `map_chunks` with the thresholds of `split`.
pub fn map_split<T, R, F>(items: &[T], threads: usize, split: Split, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&[T]) -> Vec<R> + Sync,
{
    let n = items.len();
    let t = threads.min(n / split.chunk.max(1)).max(1);
    if t <= 1 || n < split.min {
        return f(items);
    }
    let size = n.div_ceil(t);
    let chunks: Vec<&[T]> = items.chunks(size).collect();
    let Some((first, rest)) = chunks.split_first() else {
        return f(items);
    };
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = rest
            .iter()
            .map(|c| std::thread::Builder::new().spawn_scoped(s, move || f(c)))
            .collect();
        let mut out = Vec::with_capacity(n);
        out.extend(f(first));
        for (h, c) in handles.into_iter().zip(rest) {
            let part = match h {
                Ok(h) => h.join().unwrap_or_else(|_| f(c)),
                Err(_) => f(c),
            };
            out.extend(part);
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_result_in_every_mode() {
        let items: Vec<u32> = (0..1000).collect();
        let f = |c: &[u32]| c.iter().map(|x| x * 2).collect::<Vec<_>>();
        let one = map_chunks(&items, 1, f);
        for t in [2, 3, 7, 64] {
            assert_eq!(map_chunks(&items, t, f), one);
        }
        assert_eq!(map_chunks(&items[..10], 8, f), f(&items[..10]));
        for n in [0, 31, 63, 64, 65, 100, 255] {
            for t in [1, 2, 3, 8] {
                assert_eq!(map_split(&items[..n], t, SIGNATURES, f), f(&items[..n]));
            }
        }
        assert!(map_chunks(&items[..0], 8, f).is_empty());
        assert!((1..=MAX_THREADS).contains(&default_threads()));
    }
}
