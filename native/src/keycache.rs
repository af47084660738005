//! A bounded LRU cache of decoded author keys, keyed by their 32 encoded bytes.
//!
//! Decoding a point costs a field square root; a node sees the same authors again and again.
//! Only keys that decode are cached (an undecodable one is rare and cheap to refuse again).

use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

use curve25519_dalek::edwards::EdwardsPoint;
use lru::LruCache;

use crate::ed25519;

pub struct KeyCache {
    lru: Option<LruCache<[u8; 32], EdwardsPoint>>,
}

impl KeyCache {
    /// A cache holding at most `capacity` keys; 0 disables caching.
    pub fn new(capacity: usize) -> KeyCache {
        KeyCache {
            lru: NonZeroUsize::new(capacity).map(LruCache::new),
        }
    }

    pub fn capacity(&self) -> usize {
        self.lru.as_ref().map_or(0, |c| c.cap().get())
    }

    pub fn len(&self) -> usize {
        self.lru.as_ref().map_or(0, |c| c.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached point (marked as recently used), if any.
    #[inline]
    pub fn get(&mut self, key: &[u8; 32]) -> Option<EdwardsPoint> {
        self.lru.as_mut().and_then(|c| c.get(key).copied())
    }

    #[inline]
    pub fn insert(&mut self, key: [u8; 32], point: EdwardsPoint) {
        if let Some(c) = self.lru.as_mut() {
            c.put(key, point);
        }
    }

    /// Cached point, or decode and cache it. `None`: not a point encoding.
    pub fn get_or_decode(&mut self, key: &[u8; 32]) -> Option<EdwardsPoint> {
        if let Some(p) = self.get(key) {
            return Some(p);
        }
        let p = ed25519::decompress(key)?;
        self.insert(*key, p);
        Some(p)
    }

    pub fn clear(&mut self) {
        if let Some(c) = self.lru.as_mut() {
            c.clear();
        }
    }
}

/// Locks a shared cache. A poisoned lock only means another thread panicked while holding it;
/// the cache is still a valid cache (at worst missing an entry).
pub fn lock(cache: &Mutex<KeyCache>) -> MutexGuard<'_, KeyCache> {
    cache.lock().unwrap_or_else(|e| e.into_inner())
}

/// Decodes `key` through a shared cache; the decoding itself runs outside the lock.
pub fn decode_through(cache: &Mutex<KeyCache>, key: &[u8; 32]) -> Option<EdwardsPoint> {
    if let Some(p) = lock(cache).get(key) {
        return Some(p);
    }
    let p = ed25519::decompress(key)?;
    lock(cache).insert(*key, p);
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;

    fn key(i: u64) -> [u8; 32] {
        (ED25519_BASEPOINT_POINT * curve25519_dalek::Scalar::from(i + 1))
            .compress()
            .to_bytes()
    }

    #[test]
    fn bounded_lru() {
        let mut c = KeyCache::new(3);
        for i in 0..3 {
            assert!(c.get_or_decode(&key(i)).is_some());
        }
        assert_eq!(c.len(), 3);
        // touch key 0, then add key 3: key 1 is evicted
        assert!(c.get(&key(0)).is_some());
        assert!(c.get_or_decode(&key(3)).is_some());
        assert_eq!(c.len(), 3);
        assert!(c.get(&key(1)).is_none());
        assert!(c.get(&key(0)).is_some());
        assert_eq!(c.capacity(), 3);
    }

    #[test]
    fn invalid_not_cached_and_zero_capacity() {
        let mut c = KeyCache::new(4);
        // y = 2 is not on the curve
        let mut bad = [0u8; 32];
        bad[0] = 2;
        assert!(c.get_or_decode(&bad).is_none());
        assert!(c.is_empty());
        let mut z = KeyCache::new(0);
        assert!(z.get_or_decode(&key(1)).is_some());
        assert_eq!(z.len(), 0);
        assert_eq!(z.capacity(), 0);
    }
}
