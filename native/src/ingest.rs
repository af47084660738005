//! One pass over a received batch (PROTOCOL.md section 7, "Ingest"): for every item the size cap,
//! decode and field checks, its id, then duplicates (ids the node committed, kept in a bounded
//! `RecentIds`, and repeats inside the batch) skip verification (a committed one is not even
//! decoded: its id and fields are read from the envelope's fixed framing, `envelope::framed`);
//! the rest get the lifetime and clock checks, one ZIP-215 batch equation per chunk (bisected, so exactly the bad ones fail),
//! and, for intents, the body check of `node.intents.check_body` (`intent_body`) and the match
//! against the vendor's index. Large batches run on several threads; the verdicts do not depend on how many.
//!
//! Pure Rust, no pyo3; `py` turns the items into the Python result.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use crate::ed25519::{self, Prepared};
use crate::envelope::{self, Envelope};
use crate::intent_body;
pub use crate::intent_body::expected_body;
use crate::keycache::KeyCache;
use crate::matcher::MatchIndex;
use crate::parallel;
use crate::reason::Reason;
use crate::verify::resolve_keys;

/// The most ids a `RecentIds` may hold (about 80 MB when full).
pub const MAX_RECENT_IDS: usize = 1 << 20;

/// Ids of envelopes the node has committed, oldest out first once `cap` is reached. Memory grows
/// with use, never preallocated.
pub struct RecentIds {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
    cap: usize,
}

impl RecentIds {
    /// At most `cap` ids (callers bound it by MAX_RECENT_IDS); 0 remembers nothing.
    pub fn new(cap: usize) -> RecentIds {
        RecentIds {
            set: HashSet::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    pub fn contains(&self, id: &[u8; 32]) -> bool {
        self.set.contains(id)
    }

    pub fn insert(&mut self, id: [u8; 32]) {
        if self.cap == 0 || !self.set.insert(id) {
            return;
        }
        self.order.push_back(id);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

/// Locks the recent-id set (a poisoned lock still holds a valid set).
pub fn lock_recent(recent: &Mutex<RecentIds>) -> std::sync::MutexGuard<'_, RecentIds> {
    recent.lock().unwrap_or_else(|e| e.into_inner())
}

/// The verdict on one item. `env` is set whenever it decoded (whatever the reason), `id` too;
/// `matched` holds the matching subscription ids (ascending) of an accepted intent.
#[derive(Clone, Debug)]
pub struct Item<'a> {
    pub reason: Reason,
    pub id: Option<[u8; 32]>,
    pub env: Option<Envelope<'a>>,
    pub matched: Vec<i64>,
}

/// Lifetime, clock, key, signature (one batch equation for the chunk), then the intent body check
/// and the match, for decoded items that are no duplicates. One verdict per input, in order.
fn judge(
    cache: &Mutex<KeyCache>,
    envs: &[Envelope<'_>],
    now_ms: i64,
    index: Option<&MatchIndex>,
) -> Vec<(Reason, Vec<i64>)> {
    let mut out: Vec<(Reason, Vec<i64>)> = vec![(Reason::Ok, Vec::new()); envs.len()];
    let mut live: Vec<usize> = Vec::with_capacity(envs.len());
    for (k, (env, o)) in envs.iter().zip(out.iter_mut()).enumerate() {
        match env.check_lifetime().and_then(|()| env.check_time(now_ms)) {
            Ok(()) => live.push(k),
            Err(e) => o.0 = e.reason,
        }
    }
    let authors: Vec<&[u8; 32]> = live
        .iter()
        .filter_map(|&k| envs.get(k).map(|e| e.author))
        .collect();
    let points = resolve_keys(cache, &authors);
    let mut prepared: Vec<Prepared> = Vec::with_capacity(live.len());
    let mut owner: Vec<usize> = Vec::with_capacity(live.len());
    for (&k, point) in live.iter().zip(points) {
        let (Some(env), Some(o)) = (envs.get(k), out.get_mut(k)) else {
            continue;
        };
        match point {
            None => o.0 = Reason::BadKey,
            Some(a) => match ed25519::prepare(&a, env.author, &env.signed_parts(), env.sig) {
                None => o.0 = Reason::BadSignature,
                Some(p) => {
                    prepared.push(p);
                    owner.push(k);
                }
            },
        }
    }
    let verdicts = ed25519::verify_prepared_batch(&prepared);
    for (ok, k) in verdicts.into_iter().zip(owner) {
        let (Some(env), Some(o)) = (envs.get(k), out.get_mut(k)) else {
            continue;
        };
        if !ok {
            o.0 = Reason::BadSignature;
        } else if env.kind == "intent" {
            // Most intents ask for what a vendor's index has no subscription for: the body's value is
            // built only for one that may match.
            match (intent_body::check(env.body_raw), index) {
                (None, _) => o.0 = Reason::InvalidBody,
                (Some(body), Some(ix)) if ix.may_match(&body.intent.tokens) => match body.value() {
                    Some(value) => {
                        ix.match_value(&value, &mut o.1);
                    }
                    None => o.0 = Reason::InvalidBody,
                },
                (Some(_), _) => {}
            }
        }
    }
    out
}

/// The verdicts on a batch. Items longer than MAX_ENVELOPE_BYTES get too_large (the caller may
/// pass them as empty slices and fix the code up). An item is `duplicate` when its id is in
/// `recent` or an earlier item of the batch with the same id is accepted; such items are not
/// verified, and only the first of several identical items is.
pub fn ingest<'a>(
    cache: &Mutex<KeyCache>,
    recent: &Mutex<RecentIds>,
    items: &[&'a [u8]],
    now_ms: i64,
    threads: usize,
    index: Option<&MatchIndex>,
) -> Vec<Item<'a>> {
    let mut out: Vec<Item<'a>> = parallel::map_chunks(items, threads, |chunk| {
        // An id read from the framing alone that the node committed needs no decoding: most of a
        // busy node's batch (`envelope::framed` says why its fields are then those `parse` gives).
        let framed: Vec<Option<(Envelope<'a>, [u8; 32])>> = chunk
            .iter()
            .map(|data| envelope::framed(data).map(|env| (env, env.id())))
            .collect();
        let remembered: Vec<bool> = {
            let recent = lock_recent(recent);
            framed
                .iter()
                .map(|f| f.as_ref().is_some_and(|(_, id)| recent.contains(id)))
                .collect()
        };
        chunk
            .iter()
            .zip(framed)
            .zip(remembered)
            .map(|((data, framed), remembered)| match framed {
                Some((env, id)) if remembered => Item {
                    reason: Reason::Duplicate,
                    id: Some(id),
                    env: Some(env),
                    matched: Vec::new(),
                },
                framed => match envelope::parse(data) {
                    Ok(env) => Item {
                        reason: Reason::Ok,
                        // The framing's hash when it covered the same bytes (a canonical envelope's).
                        id: Some(match framed {
                            Some((f, id)) if f.same_signed_bytes(&env) => id,
                            _ => env.id(),
                        }),
                        env: Some(env),
                        matched: Vec::new(),
                    },
                    Err(e) => Item {
                        reason: e.reason,
                        id: None,
                        env: None,
                        matched: Vec::new(),
                    },
                },
            })
            .collect()
    });

    // Group the new ids; the first item of each distinct (id, sig) is verified.
    let mut groups: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
    {
        let recent = lock_recent(recent);
        for (i, item) in out.iter_mut().enumerate() {
            let Some(id) = item.id else { continue };
            if item.reason == Reason::Duplicate {
                continue; // remembered when its framing was read (it may have aged out since)
            }
            if recent.contains(&id) {
                item.reason = Reason::Duplicate;
            } else {
                groups.entry(id).or_default().push(i);
            }
        }
    }
    let mut todo: Vec<usize> = Vec::with_capacity(out.len());
    // For a repeat: the position of the first item with the same bytes.
    let mut same_as: Vec<(usize, usize)> = Vec::new();
    for members in groups.values() {
        let mut sigs: Vec<(&[u8; 64], usize)> = Vec::new();
        for &i in members {
            let Some(env) = out.get(i).and_then(|it| it.env) else {
                continue;
            };
            match sigs.iter().find(|(s, _)| *s == env.sig) {
                Some(&(_, first)) => same_as.push((i, first)),
                None => {
                    sigs.push((env.sig, i));
                    todo.push(i);
                }
            }
        }
    }
    todo.sort_unstable();
    let envs: Vec<Envelope<'a>> = todo
        .iter()
        .filter_map(|&i| out.get(i).and_then(|it| it.env))
        .collect();
    let verdicts = parallel::map_split(&envs, threads, parallel::SIGNATURES, |chunk| {
        judge(cache, chunk, now_ms, index)
    });
    for (&i, (reason, matched)) in todo.iter().zip(verdicts) {
        if let Some(item) = out.get_mut(i) {
            item.reason = reason;
            item.matched = matched;
        }
    }
    for (i, first) in same_as {
        let reason = out.get(first).map_or(Reason::Malformed, |it| it.reason);
        if let Some(item) = out.get_mut(i) {
            item.reason = reason;
        }
    }
    // Within a group, everything after the first accepted item is a duplicate.
    for members in groups.values() {
        let mut accepted = false;
        for &i in members {
            let Some(item) = out.get_mut(i) else { continue };
            if accepted {
                item.reason = Reason::Duplicate;
                item.matched.clear();
            } else if item.reason == Reason::Ok {
                accepted = true;
            }
        }
    }
    out
}
