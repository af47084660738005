//! The index's shared strings: every token, tag, handle, key, currency, geohash prefix and encoded
//! equality value is stored once and named by a `u32` symbol, reference-counted so that removing
//! the last subscription that uses one frees it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// rustc's Fx hash: a few cycles per word instead of SipHash's dozens. The tables it keys hold
/// only the vendor's own (local) subscriptions; bytes from the network are only looked up, so
/// they cannot choose the tables' layout.
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

impl Fx {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

struct Entry {
    bytes: Box<[u8]>,
    refs: u32,
}

/// Byte strings <-> symbols. Symbols of freed strings are reused.
#[derive(Default)]
pub struct Interner {
    ids: FxMap<Box<[u8]>, u32>,
    entries: Vec<Entry>,
    free: Vec<u32>,
}

impl Interner {
    /// The symbol of `bytes`, adding one reference (and the string when new).
    pub fn intern(&mut self, bytes: &[u8]) -> u32 {
        if let Some(&sym) = self.ids.get(bytes) {
            self.entries[sym as usize].refs += 1;
            return sym;
        }
        let entry = Entry {
            bytes: bytes.into(),
            refs: 1,
        };
        let sym = match self.free.pop() {
            Some(sym) => {
                self.entries[sym as usize] = entry;
                sym
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        self.ids.insert(bytes.into(), sym);
        sym
    }

    /// The symbol of `bytes` when some subscription uses it.
    #[inline]
    pub fn get(&self, bytes: &[u8]) -> Option<u32> {
        self.ids.get(bytes).copied()
    }

    #[inline]
    pub fn bytes(&self, sym: u32) -> &[u8] {
        self.entries.get(sym as usize).map_or(&[], |e| &e.bytes)
    }

    /// Drops one reference; the last one frees the string.
    pub fn release(&mut self, sym: u32) {
        let Some(e) = self.entries.get_mut(sym as usize) else {
            return;
        };
        e.refs = e.refs.saturating_sub(1);
        if e.refs == 0 {
            let bytes = std::mem::take(&mut e.bytes);
            self.ids.remove(&bytes);
            self.free.push(sym);
        }
    }

    /// One more than the largest symbol handed out (a size for tables indexed by symbol).
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    pub fn heap_bytes(&self) -> usize {
        let strings: usize = self.entries.iter().map(|e| 2 * e.bytes.len()).sum();
        strings
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.ids.capacity() * (std::mem::size_of::<(Box<[u8]>, u32)>() + 1)
            + self.free.capacity() * 4
    }
}
