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

mod intern;
mod read;
mod staged;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

use crate::codec::{self, Value};
use crate::envelope;
use intern::{FxMap, Interner};
pub use read::date_number;
use read::{body_of, bound_holds, geohash_of, span_of, Body, Span};
use staged::Item;
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
const WORDS_PER_BOUND: usize = 5; // key, currency, op | kind << 8, value low, value high

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

/// A subscription's symbols, packed: a header word (counts of 6 bits each, tokens, tags, handles,
/// equalities, bounds, then a near flag; bit 31 set: the five counts follow as words), then the
/// symbols in that order, equalities as (key, value) pairs, the near prefix, bounds of 5 words.
#[derive(Clone, Copy)]
struct Packed<'a> {
    tokens: &'a [u32],
    tags: &'a [u32],
    handles: &'a [u32],
    equals: &'a [u32],
    near: Option<u32>,
    bounds: &'a [u32],
}

const SMALL: usize = 63;
const EXTENDED: u32 = 1 << 31;

fn pack(counts: [usize; 5], near: bool, words: &mut Vec<u32>) {
    if counts.iter().all(|&c| c < SMALL) {
        let mut h = u32::from(near) << 30;
        for (i, &c) in counts.iter().enumerate() {
            h |= (c as u32) << (6 * i);
        }
        words.push(h);
    } else {
        words.push(EXTENDED | (u32::from(near) << 30));
        words.extend(counts.iter().map(|&c| c as u32));
    }
}

fn unpack(data: &[u32]) -> Packed<'_> {
    let h = data.first().copied().unwrap_or(0);
    let (mut counts, mut at) = ([0usize; 5], 1);
    if h & EXTENDED != 0 {
        for (i, c) in counts.iter_mut().enumerate() {
            *c = data.get(1 + i).copied().unwrap_or(0) as usize;
        }
        at = 6;
    } else {
        for (i, c) in counts.iter_mut().enumerate() {
            *c = ((h >> (6 * i)) & 63) as usize;
        }
    }
    let mut take = |n: usize| {
        let s = data.get(at..at + n).unwrap_or(&[]);
        at += n;
        s
    };
    let tokens = take(counts[0]);
    let tags = take(counts[1]);
    let handles = take(counts[2]);
    let equals = take(2 * counts[3]);
    let near = if h & (1 << 30) != 0 {
        take(1).first().copied()
    } else {
        None
    };
    let bounds = take(WORDS_PER_BOUND * counts[4]);
    Packed {
        tokens,
        tags,
        handles,
        equals,
        near,
        bounds,
    }
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

// A posting list holds its subscriptions' records back to back, so matching reads them in order:
// [id low, id high, slot (NONE: removed), n, n words of packed symbols].
const RECORD: usize = 4;

#[derive(Default)]
struct Posting {
    words: Vec<u32>,
    live: u32,
    /// Words of removed records, reclaimed when they are half the list.
    dead: usize,
}

/// The records of a posting list: (id, slot, packed symbols); removed ones included.
fn records(words: &[u32]) -> impl Iterator<Item = (usize, i64, u32, &[u32])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let head = words.get(at..at + RECORD)?;
        let start = at + RECORD;
        let data = words.get(start..start + head[3] as usize)?;
        let offset = at;
        at = start + data.len();
        let id = (u64::from(head[0]) | (u64::from(head[1]) << 32)) as i64;
        Some((offset, id, head[2], data))
    })
}

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

/// A constraint of the body as the index sees it.
struct Con<'a> {
    key: u32,
    value: Option<u32>,
    span: Option<Span<'a>>,
}

/// A body resolved against the index's symbols: names no subscription uses are dropped.
struct View<'a> {
    tokens: Vec<u32>,
    tags: Vec<u32>,
    handles: Vec<u32>,
    cons: Vec<Con<'a>>,
    geohash: Option<&'a str>,
}

impl View<'_> {
    fn con(&self, key: u32) -> Option<&Con<'_>> {
        self.cons.iter().find(|c| c.key == key)
    }
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

    /// Adds subscriptions (ids may repeat, as in `new`); all or nothing: on error (the first
    /// subscription without a token or with a value that cannot be encoded) nothing changes.
    pub fn add(&mut self, subs: Vec<Subscription>) -> Result<(), String> {
        let mut staged = Staged::default();
        for s in &subs {
            staged.push(s)?;
        }
        self.add_staged(&staged)
    }

    /// Adds checked subscriptions (see `add`); refuses only a batch that would overflow the index.
    pub fn add_staged(&mut self, staged: &Staged) -> Result<(), String> {
        if self.len() + staged.len() >= NONE as usize
            || self.slots.len() + staged.len() >= NONE as usize
        {
            return Err("too many subscriptions".to_owned());
        }
        // Count the whole batch first, so that a batch files under its rarest tokens as a build does.
        for item in staged.items() {
            for t in &item.tokens {
                let sym = self.strings.intern(t) as usize;
                if sym >= self.token_subs.len() {
                    self.token_subs.resize(sym + 1, 0);
                }
                self.token_subs[sym] += 1;
            }
        }
        let mut words = Vec::new();
        for item in staged.items() {
            words.clear();
            self.intern(&item, &mut words);
            let n = self.strings.capacity();
            self.token_subs.resize(n.max(self.token_subs.len()), 0);
            self.token_near.resize(n.max(self.token_near.len()), 0);
            self.file(item.id, &words);
        }
        Ok(())
    }

    /// Removes every subscription with one of these ids; returns how many were removed.
    pub fn remove(&mut self, ids: &[i64]) -> usize {
        let mut removed = 0;
        for id in ids {
            let Some(mut slot) = self.ids.remove(id) else {
                continue;
            };
            while slot != NONE {
                let next = self.slots[slot as usize].next;
                self.unfile(slot);
                removed += 1;
                slot = next;
            }
        }
        removed
    }

    /// Packs one staged subscription into `w`, its tokens already interned (by `add_staged`).
    fn intern(&mut self, s: &Item<'_>, w: &mut Vec<u32>) {
        let counts = [
            s.tokens.len(),
            s.tags.len(),
            s.handles.len(),
            s.equals.len(),
            s.bounds.len(),
        ];
        pack(counts, s.near.is_some(), w);
        let st = &mut self.strings;
        w.extend(s.tokens.iter().map(|t| st.get(t).unwrap_or(NONE)));
        for names in [&s.tags, &s.handles] {
            w.extend(names.iter().map(|n| st.intern(n)));
        }
        for (k, v) in &s.equals {
            w.push(st.intern(k));
            w.push(st.intern(v));
        }
        if let Some(p) = s.near {
            w.push(st.intern(p));
        }
        for &(key, op_kind, value, cur) in &s.bounds {
            let v = value as u64;
            w.extend([
                st.intern(key),
                st.intern(cur),
                op_kind,
                v as u32,
                (v >> 32) as u32,
            ]);
        }
    }

    fn list_for(&mut self, key: ListKey) -> u32 {
        let found = match &key {
            ListKey::Keyed(k) => self.keyed.get(k).copied(),
            ListKey::Near(k) => self.near.get(k).copied(),
        };
        if let Some(list) = found {
            return list;
        }
        let list = match self.free_lists.pop() {
            Some(l) => l,
            None => {
                self.lists.push(Posting::default());
                self.list_keys.push(ListKey::Keyed(Key {
                    token: 0,
                    tag: PLAIN,
                    a: 0,
                    b: 0,
                }));
                (self.lists.len() - 1) as u32
            }
        };
        match &key {
            ListKey::Keyed(k) => {
                self.keyed.insert(*k, list);
            }
            ListKey::Near(k) => {
                self.near.insert(k.clone(), list);
                let token = u32::from_be_bytes([k[0], k[1], k[2], k[3]]);
                self.token_near[token as usize] += 1;
                self.longest_near = self.longest_near.max(k.len() - 4);
            }
        }
        self.list_keys[list as usize] = key;
        list
    }

    fn file(&mut self, id: i64, data: &[u32]) {
        let p = unpack(data);
        let counts = &self.token_subs;
        let token = p
            .tokens
            .iter()
            .copied()
            .min_by_key(|&t| counts[t as usize])
            .unwrap_or(0);
        let keyed = |tag, a, b| ListKey::Keyed(Key { token, tag, a, b });
        let key = if let [k, v, ..] = p.equals {
            keyed(BY_EQUAL, *k, *v)
        } else if let Some(n) = p.near {
            ListKey::Near(near_key(token, self.strings.bytes(n)).into())
        } else if let Some(&h) = p.handles.first() {
            keyed(BY_HANDLE, h, 0)
        } else if let Some(&t) = p.tags.first() {
            keyed(BY_TAG, t, 0)
        } else if let [k, cur, op_kind_word, ..] = p.bounds {
            keyed(BY_KEY, *k, bound_class(op_kind(*op_kind_word).1, *cur))
        } else {
            keyed(PLAIN, 0, 0)
        };
        let list = self.list_for(key);
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.slots.push(FREE);
                (self.slots.len() - 1) as u32
            }
        };
        let posting = &mut self.lists[list as usize];
        let offset = posting.words.len() as u32;
        let raw = id as u64;
        posting
            .words
            .extend([raw as u32, (raw >> 32) as u32, slot, data.len() as u32]);
        posting.words.extend_from_slice(data);
        posting.live += 1;
        let next = self.ids.insert(id, slot).unwrap_or(NONE);
        self.slots[slot as usize] = Slot { list, offset, next };
    }

    fn unfile(&mut self, slot: u32) {
        let s = std::mem::replace(&mut self.slots[slot as usize], FREE);
        self.free_slots.push(slot);
        let posting = &mut self.lists[s.list as usize];
        let at = s.offset as usize;
        let n = posting.words[at + 3] as usize;
        posting.words[at + 2] = NONE;
        posting.live -= 1;
        posting.dead += RECORD + n;
        // Release what the record names before its words can be reused.
        let p = unpack(&posting.words[at + RECORD..at + RECORD + n]);
        for &t in p.tokens {
            self.token_subs[t as usize] -= 1;
        }
        let st = &mut self.strings;
        for &sym in p
            .tokens
            .iter()
            .chain(p.tags)
            .chain(p.handles)
            .chain(p.equals)
        {
            st.release(sym);
        }
        if let Some(n) = p.near {
            st.release(n);
        }
        for b in p.bounds.chunks_exact(WORDS_PER_BOUND) {
            st.release(b[0]);
            st.release(b[1]);
        }
        if posting.live == 0 {
            *posting = Posting::default();
            match &self.list_keys[s.list as usize] {
                ListKey::Keyed(k) => {
                    self.keyed.remove(k);
                }
                ListKey::Near(k) => {
                    self.near.remove(k);
                    let token = u32::from_be_bytes([k[0], k[1], k[2], k[3]]);
                    self.token_near[token as usize] -= 1;
                }
            }
            self.free_lists.push(s.list);
        } else if 2 * posting.dead > posting.words.len() {
            self.compact(s.list);
        }
    }

    /// Drops a list's removed records (amortised: it waits until they are half its words).
    fn compact(&mut self, list: u32) {
        let posting = &mut self.lists[list as usize];
        let old = std::mem::take(&mut posting.words);
        let mut words = Vec::with_capacity(old.len() - posting.dead);
        for (offset, _, slot, data) in records(&old) {
            if slot == NONE {
                continue;
            }
            let start = words.len();
            words.extend_from_slice(&old[offset..offset + RECORD + data.len()]);
            self.slots[slot as usize].offset = start as u32;
        }
        posting.words = words;
        posting.dead = 0;
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

    fn view<'a>(&self, body: &Body<'a>) -> View<'a> {
        let st = &self.strings;
        let syms = |names: &[&str]| {
            let mut v: Vec<u32> = names.iter().filter_map(|n| st.get(n.as_bytes())).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let cons = body
            .constraints
            .iter()
            .filter_map(|(k, v)| {
                let key = st.get(k.as_bytes())?;
                let value = codec::encode(v).ok().and_then(|e| st.get(&e));
                Some(Con {
                    key,
                    value,
                    span: span_of(v),
                })
            })
            .collect();
        View {
            tokens: syms(&body.tokens),
            tags: syms(&body.tags),
            handles: syms(&body.handles),
            cons,
            geohash: geohash_of(body.constraints),
        }
    }

    fn holds(&self, p: Packed<'_>, v: &View<'_>) -> bool {
        p.tokens.iter().all(|t| v.tokens.contains(t))
            && p.tags.iter().all(|t| v.tags.contains(t))
            && p.handles.iter().all(|h| v.handles.contains(h))
            && p.equals
                .chunks_exact(2)
                .all(|kv| v.con(kv[0]).is_some_and(|c| c.value == Some(kv[1])))
            && p.near.is_none_or(|n| {
                // Areas overlap: either geohash is a prefix of the other.
                let p = self.strings.bytes(n);
                v.geohash
                    .is_some_and(|g| g.as_bytes().starts_with(p) || p.starts_with(g.as_bytes()))
            })
            && p.bounds.chunks_exact(WORDS_PER_BOUND).all(|b| {
                let (op, kind) = op_kind(b[2]);
                let value = (u64::from(b[3]) | (u64::from(b[4]) << 32)) as i64;
                let cur = self.strings.bytes(b[1]);
                v.con(b[0])
                    .and_then(|c| c.span.as_ref())
                    .is_some_and(|sp| bound_holds(op, kind, value, cur, sp))
            })
    }

    fn check(&self, list: u32, v: &View<'_>, out: &mut Vec<i64>) {
        let words = self.lists.get(list as usize).map_or(&[][..], |l| &l.words);
        for (_, id, slot, data) in records(words) {
            if slot != NONE && self.holds(unpack(data), v) {
                out.push(id);
            }
        }
    }

    /// Appends the ids of the subscriptions a decoded body matches (ascending, each once) to `out`;
    /// false (and nothing appended) when the body is malformed.
    pub fn match_value(&self, value: &Value, out: &mut Vec<i64>) -> bool {
        let Some(body) = body_of(value) else {
            return false;
        };
        let start = out.len();
        let v = self.view(&body);
        for &token in &v.tokens {
            if self.token_subs.get(token as usize).is_none_or(|&n| n == 0) {
                continue;
            }
            let mut keyed = |tag, a, b| {
                if let Some(&list) = self.keyed.get(&Key { token, tag, a, b }) {
                    self.check(list, &v, out);
                }
            };
            keyed(PLAIN, 0, 0);
            for c in &v.cons {
                if let Some(value) = c.value {
                    keyed(BY_EQUAL, c.key, value);
                }
                if let Some(span) = &c.span {
                    let cur = || self.strings.get(span.cur.as_bytes());
                    match span.kind {
                        Kind::Money => cur()
                            .into_iter()
                            .for_each(|cur| keyed(BY_KEY, c.key, bound_class(Kind::Money, cur))),
                        kind => keyed(BY_KEY, c.key, bound_class(kind, 0)),
                    }
                }
            }
            for &h in &v.handles {
                keyed(BY_HANDLE, h, 0);
            }
            for &t in &v.tags {
                keyed(BY_TAG, t, 0);
            }
            let (Some(g), true) = (v.geohash, self.token_near[token as usize] > 0) else {
                continue;
            };
            // Prefixes the geohash extends (the empty one too), then those that extend it.
            let key = near_key(token, g.as_bytes());
            for end in 4..=key.len().min(4 + self.longest_near) {
                if let Some(&list) = self.near.get(&key[..end]) {
                    self.check(list, &v, out);
                }
            }
            let longer = self.near.range::<[u8], _>((Excluded(&key[..]), Unbounded));
            for (_, &list) in longer.take_while(|(k, _)| k.starts_with(&key)) {
                self.check(list, &v, out);
            }
        }
        let found = &mut out[start..];
        found.sort_unstable();
        let mut n = 0;
        for i in 0..found.len() {
            if n == 0 || found[i] != found[n - 1] {
                found[n] = found[i];
                n += 1;
            }
        }
        out.truncate(start + n);
        true
    }

    /// Matches one canonical body; returns its flag.
    pub fn match_body(&self, body: &[u8], out: &mut Vec<i64>) -> u8 {
        match codec::decode(body) {
            Ok(value) if self.match_value(&value, out) => FLAG_OK,
            _ => FLAG_MALFORMED,
        }
    }

    /// Decodes one envelope (structure only: the caller has verified it) and matches its body when
    /// it is an `intent`; returns its flag.
    pub fn match_envelope(&self, data: &[u8], out: &mut Vec<i64>) -> u8 {
        let Ok(env) = envelope::parse(data) else {
            return FLAG_MALFORMED;
        };
        if env.kind != "intent" {
            return FLAG_NOT_INTENT;
        }
        match env.body() {
            Ok(value) if self.match_value(&value, out) => FLAG_OK,
            _ => FLAG_MALFORMED,
        }
    }

    fn batch(&self, items: &[&[u8]], one: impl Fn(&Self, &[u8], &mut Vec<i64>) -> u8) -> Matches {
        let mut m = Matches {
            flags: Vec::with_capacity(items.len()),
            offsets: Vec::with_capacity(items.len() + 1),
            ids: Vec::new(),
        };
        m.offsets.push(0);
        for item in items {
            m.flags.push(one(self, item, &mut m.ids));
            m.offsets.push(m.ids.len() as u64);
        }
        m
    }

    /// One batch of canonical intent bodies.
    pub fn match_bodies(&self, bodies: &[&[u8]]) -> Matches {
        self.batch(bodies, Self::match_body)
    }

    /// One batch of envelopes.
    pub fn match_envelopes(&self, envelopes: &[&[u8]]) -> Matches {
        self.batch(envelopes, Self::match_envelope)
    }
}
