//! The envelope verification pipeline (PROTOCOL.md section 2, "Verification").
//!
//! For each item: decode and field checks -> their reason; time against `now_ms` -> not_yet_valid /
//! expired (after the kind's lifetime cap -> too_long_lived); author key (through the cache) -> bad_key; then every survivor's signature in ONE
//! ZIP-215 batch, bisected on failure so exactly the bad items get bad_signature.

use std::sync::Mutex;

use curve25519_dalek::edwards::EdwardsPoint;

use crate::ed25519::{self, Prepared};
use crate::envelope::{self, Envelope};
use crate::hotkeys::{self, HotKeys};
use crate::keycache::{self, lock, KeyCache};
use crate::parallel;
use crate::reason::{Reason, Result};

/// The outcome for one envelope: its reason and, when it decoded, its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub reason: Reason,
    /// SHA-256 of the signed bytes; `None` when the envelope did not pass decode and field checks.
    pub id: Option<[u8; 32]>,
}

/// Looks up (or decodes and caches) the keys of `authors`. Decoding happens outside the lock.
pub(crate) fn resolve_keys(
    cache: &Mutex<KeyCache>,
    authors: &[&[u8; 32]],
) -> Vec<Option<EdwardsPoint>> {
    let mut points: Vec<Option<EdwardsPoint>> = Vec::with_capacity(authors.len());
    let mut misses = Vec::new();
    {
        let mut c = lock(cache);
        for (i, a) in authors.iter().enumerate() {
            let p = c.get(a);
            if p.is_none() {
                misses.push(i);
            }
            points.push(p);
        }
    }
    if misses.is_empty() {
        return points;
    }
    let mut fresh = Vec::with_capacity(misses.len());
    for &i in &misses {
        if let (Some(a), Some(slot)) = (authors.get(i), points.get_mut(i)) {
            *slot = ed25519::decompress(a);
            if let Some(p) = *slot {
                fresh.push((**a, p));
            }
        }
    }
    if !fresh.is_empty() {
        let mut c = lock(cache);
        for (k, p) in fresh {
            c.insert(k, p);
        }
    }
    points
}

/// Decode, field checks and time checks of one item.
fn structure(data: &[u8], now_ms: i64) -> (Result<Envelope<'_>>, Option<[u8; 32]>) {
    match envelope::parse(data) {
        Err(e) => (Err(e), None),
        Ok(env) => {
            let id = env.id();
            match env.check_lifetime().and_then(|()| env.check_time(now_ms)) {
                Err(e) => (Err(e), Some(id)),
                Ok(()) => (Ok(env), Some(id)),
            }
        }
    }
}

/// Verifies a batch of envelopes. `outcomes[i]` is item i's reason and id.
pub fn verify_batch<D: AsRef<[u8]>>(
    cache: &Mutex<KeyCache>,
    items: &[D],
    now_ms: i64,
) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = Vec::with_capacity(items.len());
    let mut live: Vec<(usize, Envelope<'_>)> = Vec::with_capacity(items.len());
    for (i, data) in items.iter().enumerate() {
        let (res, id) = structure(data.as_ref(), now_ms);
        match res {
            Ok(env) => {
                live.push((i, env));
                out.push(Outcome {
                    reason: Reason::Ok,
                    id,
                });
            }
            Err(e) => out.push(Outcome {
                reason: e.reason,
                id,
            }),
        }
    }
    if live.is_empty() {
        return out;
    }

    let authors: Vec<&[u8; 32]> = live.iter().map(|(_, e)| e.author).collect();
    let points = resolve_keys(cache, &authors);

    let mut prepared: Vec<Prepared> = Vec::with_capacity(live.len());
    let mut owner: Vec<usize> = Vec::with_capacity(live.len());
    for ((i, env), point) in live.iter().zip(points) {
        let reason = match point {
            None => Reason::BadKey,
            Some(a) => match ed25519::prepare(&a, env.author, &env.signed_parts(), env.sig) {
                None => Reason::BadSignature,
                Some(p) => {
                    prepared.push(p);
                    owner.push(*i);
                    continue;
                }
            },
        };
        if let Some(o) = out.get_mut(*i) {
            o.reason = reason;
        }
    }

    let verdicts = ed25519::verify_prepared_batch(&prepared);
    for (ok, i) in verdicts.into_iter().zip(owner) {
        if !ok {
            if let Some(o) = out.get_mut(i) {
                o.reason = Reason::BadSignature;
            }
        }
    }
    out
}

/// `verify_batch` split over up to `threads` threads for a large batch (each chunk its own batch
/// equation); the outcomes are the same as on one thread.
pub fn verify_batch_threaded<D: AsRef<[u8]> + Sync>(
    cache: &Mutex<KeyCache>,
    items: &[D],
    now_ms: i64,
    threads: usize,
) -> Vec<Outcome> {
    parallel::map_split(items, threads, parallel::SIGNATURES, |chunk| {
        verify_batch(cache, chunk, now_ms)
    })
}

/// Verifies one envelope with the single (non-batch) check; a key that signs often is checked with
/// its fixed-base table from `hot` (same verdict, ~0.6 of the time).
pub fn verify_one(
    cache: &Mutex<KeyCache>,
    hot: &Mutex<HotKeys>,
    data: &[u8],
    now_ms: i64,
) -> Outcome {
    let (res, id) = structure(data, now_ms);
    let env = match res {
        Ok(env) => env,
        Err(e) => {
            return Outcome {
                reason: e.reason,
                id,
            }
        }
    };
    let Some(a) = keycache::decode_through(cache, env.author) else {
        return Outcome {
            reason: Reason::BadKey,
            id,
        };
    };
    let ok = ed25519::prepare(&a, env.author, &env.signed_parts(), env.sig).is_some_and(|p| {
        match hotkeys::table_for(hot, env.author, &a) {
            Some(table) => ed25519::check_one_with(&p, &table),
            None => ed25519::check_one(&p),
        }
    });
    let reason = if ok { Reason::Ok } else { Reason::BadSignature };
    Outcome { reason, id }
}
