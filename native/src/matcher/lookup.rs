//! Matching against the index: a body resolved to the index's symbols, the posting lists it can
//! hit looked up, and every candidate checked against all its conditions. Malformed input matches
//! nothing and is flagged.

use std::ops::Bound::{Excluded, Unbounded};

use super::layout::{records, unpack, Packed, WORDS_PER_BOUND};
use super::read::{body_of, bound_holds, geohash_of, span_of, Body, Span};
use super::{
    bound_class, near_key, op_kind, Key, Kind, MatchIndex, Matches, BY_EQUAL, BY_HANDLE, BY_KEY,
    BY_TAG, FLAG_MALFORMED, FLAG_NOT_INTENT, FLAG_OK, NONE, PLAIN,
};
use crate::codec::{self, Value};
use crate::envelope;

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

impl MatchIndex {
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

    /// Whether an intent with these tokens may match anything: some subscription wants one of them.
    /// `match_value` finds nothing for a body whose tokens are all unwanted.
    pub fn may_match<S: AsRef<str>>(&self, tokens: &[S]) -> bool {
        tokens.iter().any(|t| {
            self.strings
                .get(t.as_ref().as_bytes())
                .is_some_and(|sym| self.token_subs.get(sym as usize).is_some_and(|&n| n > 0))
        })
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
