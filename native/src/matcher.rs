//! The vendor-side subscription matcher: compiled subscriptions in, an index kept up to date by
//! `add` and `remove` (each costs what it changes, never a rebuild), and batches of intent bodies
//! (or whole `intent` envelopes) matched against it in one call.
//!
//! Pure Rust, no pyo3. Subscriptions arrive already compiled (by `node/subscriptions.py`). Every
//! string is interned (`intern`), a subscription is one packed array of symbols, and each is filed
//! in exactly one posting list: under the rarest of its tokens (counted over the subscriptions
//! present when it is added) and, inside that token, under one discriminator an intent must have
//! to match, the first of: its first equality (key + canonical value), its whole `near` prefix, its
//! first handle, its first tag, the key and class (money in its currency, or a kind) of its first
//! bound; else it is "plain" (checked for every intent with the token). An intent with geohash `g`
//! looks up the prefixes of `g` and the prefixes that extend `g` (a range of the ordered near map).
//! A posting list holds its subscriptions' records back to back (read in order when matching;
//! removed records are reclaimed once they are half of it). Every candidate is checked against all
//! its conditions, so the index only narrows and never decides: the result is exactly that of
//! checking every subscription (`node/reference/matcher.py` does the same in Python and the tests
//! compare the two, and an index updated in place with one built from scratch). Malformed input
//! matches nothing and is flagged; nothing here can panic on input bytes.
//!
//! Here: the public types and the index's tables. `layout` is how a subscription and a posting
//! list's records are packed into words, `update` files and unfiles them (`add`, `remove`),
//! `lookup` matches bodies and envelopes against the index; `read` reads an intent body, `staged`
//! holds checked subscriptions on their way in, `intern` the shared strings.

mod intern;
mod layout;
mod lookup;
mod read;
mod staged;
#[cfg(test)]
mod tests;
mod update;

use std::collections::BTreeMap;

use crate::codec::Value;
use intern::{FxMap, Interner};
use layout::Posting;
pub use read::date_number;
pub use staged::Staged;

/// Per-item flag: the item was read and matched (possibly against nothing).
pub const FLAG_OK: u8 = 0;
/// Per-item flag: not a canonical body (or envelope) with the matcher's view of an intent body.
pub const FLAG_MALFORMED: u8 = 1;
/// Per-item flag (envelopes only): a well-formed envelope of another kind than `intent`.
pub const FLAG_NOT_INTENT: u8 = 2;

/// The spelling of each op, by code.
pub const OPS: [&str; 5] = ["=", "<", "<=", ">", ">="];
/// The name of each kind, by code.
pub const KINDS: [&str; 3] = ["money", "int", "date"];

/// The comparison of a bound; `Eq` means "the intent's value, or some value of its range, is this".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq = 0,
    Lt = 1,
    Le = 2,
    Gt = 3,
    Ge = 4,
}

impl Op {
    pub fn from_code(code: i64) -> Option<Op> {
        Some(match code {
            0 => Op::Eq,
            1 => Op::Lt,
            2 => Op::Le,
            3 => Op::Gt,
            4 => Op::Ge,
            _ => return None,
        })
    }
}

/// What a bound compares: money (in one currency), whole numbers, or dates (as YYYYMMDD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Money = 0,
    Int = 1,
    Date = 2,
}

impl Kind {
    pub fn from_code(code: i64) -> Option<Kind> {
        Some(match code {
            0 => Kind::Money,
            1 => Kind::Int,
            2 => Kind::Date,
            _ => return None,
        })
    }
}

/// `key OP value` (money: `cur` is the currency and value is in minor units; date: YYYYMMDD).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    pub key: String,
    pub op: Op,
    pub kind: Kind,
    pub value: i64,
    pub cur: String,
}

/// One compiled subscription. An intent matches when it has every token, tag and handle, every
/// `equals` constraint with exactly that value, a `near` geohash overlapping the prefix, and a
/// value satisfying every bound.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscription {
    pub id: i64,
    pub tokens: Vec<String>,
    pub tags: Vec<String>,
    pub handles: Vec<String>,
    pub equals: Vec<(String, Value)>,
    pub near: Option<String>,
    pub bounds: Vec<Bound>,
}

/// One batch's results: `flags[i]` is item i's flag; its ids are `ids[offsets[i]..offsets[i + 1]]`
/// (ascending, each once; none unless the flag is FLAG_OK).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Matches {
    pub flags: Vec<u8>,
    pub offsets: Vec<u64>,
    pub ids: Vec<i64>,
}

const NONE: u32 = u32::MAX;

// The discriminators of a keyed posting list (near prefixes live in their own ordered map).
const PLAIN: u8 = 0;
const BY_EQUAL: u8 = 1; // a = key, b = encoded value
const BY_HANDLE: u8 = 2;
const BY_TAG: u8 = 3;
const BY_KEY: u8 = 4; // a = the key a bound reads, b = its class (bound_class)

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    token: u32,
    tag: u8,
    a: u32,
    b: u32,
}

/// Where a posting list is filed, to drop the entry when the list empties.
enum ListKey {
    Keyed(Key),
    Near(Box<[u8]>),
}

/// Where a subscription is: its posting list and the offset of its record there.
#[derive(Clone, Copy)]
struct Slot {
    list: u32,
    offset: u32,
    /// The next slot with the same id (ids may repeat), or NONE.
    next: u32,
}

const FREE: Slot = Slot {
    list: NONE,
    offset: 0,
    next: NONE,
};

/// The index of a vendor's subscriptions.
#[derive(Default)]
pub struct MatchIndex {
    strings: Interner,
    /// By symbol: how many subscriptions have it among their tokens (chooses the rarest).
    token_subs: Vec<u32>,
    /// By symbol: how many near-prefix lists its token has (skips the near lookups when none).
    token_near: Vec<u32>,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    ids: FxMap<i64, u32>,
    lists: Vec<Posting>,
    list_keys: Vec<ListKey>,
    free_lists: Vec<u32>,
    keyed: FxMap<Key, u32>,
    /// token symbol (4 bytes, big-endian) + near prefix -> list.
    near: BTreeMap<Box<[u8]>, u32>,
    longest_near: usize,
}

fn near_key(token: u32, prefix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + prefix.len());
    k.extend_from_slice(&token.to_be_bytes());
    k.extend_from_slice(prefix);
    k
}

/// What a bound can compare with: money in its currency (the currency's symbol), or a kind.
fn bound_class(kind: Kind, cur: u32) -> u32 {
    match kind {
        Kind::Money => cur,
        Kind::Int => NONE - 1,
        Kind::Date => NONE - 2,
    }
}

fn op_kind(word: u32) -> (Op, Kind) {
    let op = Op::from_code(i64::from(word & 0xff)).unwrap_or(Op::Eq);
    let kind = Kind::from_code(i64::from(word >> 8)).unwrap_or(Kind::Int);
    (op, kind)
}

impl MatchIndex {
    /// Builds the index. Every subscription needs a token and encodable equality values; the error
    /// names the first one that does not.
    pub fn new(subs: Vec<Subscription>) -> Result<MatchIndex, String> {
        let mut index = MatchIndex::default();
        index.add(subs)?;
        Ok(index)
    }

    pub fn len(&self) -> usize {
        self.slots.len() - self.free_slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An estimate of the heap the index holds, in bytes (capacities, plus 16 bytes of allocator
    /// overhead per allocation).
    pub fn heap_bytes(&self) -> usize {
        const ALLOC: usize = 16;
        let lists: usize = self
            .lists
            .iter()
            .map(|l| 4 * l.words.capacity() + ALLOC)
            .sum();
        let near: usize = self.near.keys().map(|k| k.len() + 4 + 2 * ALLOC).sum();
        self.strings.heap_bytes()
            + self.slots.capacity() * std::mem::size_of::<Slot>()
            + 4 * (self.free_slots.capacity() + self.free_lists.capacity())
            + 4 * (self.token_subs.capacity() + self.token_near.capacity())
            + self.ids.capacity() * (std::mem::size_of::<(i64, u32)>() + 1)
            + lists
            + self.lists.capacity() * std::mem::size_of::<Posting>()
            + self.list_keys.capacity() * std::mem::size_of::<ListKey>()
            + self.keyed.capacity() * (std::mem::size_of::<(Key, u32)>() + 1)
            + near
    }
}
