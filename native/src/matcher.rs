//! The vendor-side subscription matcher: compiled subscriptions in, an index built once, and batches
//! of intent bodies (or whole `intent` envelopes) matched against it in one call.
//!
//! Pure Rust, no pyo3. Subscriptions arrive already compiled (by `node/subscriptions.py`); each is
//! filed under one of its tokens (the rarest among all subscriptions) and, inside that token's
//! bucket, under one discriminator an intent must have to match and can look up directly, the first
//! of: its first equality (key + canonical value), the first byte of its `near` prefix, its first
//! handle, its first tag, the key of its first bound; else it is "plain" (checked for every intent
//! with the token). Every candidate is then checked against all its conditions, so the index only
//! narrows and never decides: the result is exactly that of checking every subscription
//! (`node/reference/matcher.py` does the same in Python and the tests compare the two). Malformed
//! input matches nothing and is flagged; nothing here can panic on input bytes.

use std::collections::HashMap;

use crate::codec::{self, Value};
use crate::envelope;

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

// Discriminator tags (the first byte of a discriminator).
const BY_EQUAL: u8 = b'e'; // + key + NUL + canonical value
const BY_NEAR: u8 = b'n'; // + first byte of the prefix
const BY_HANDLE: u8 = b'h'; // + handle
const BY_TAG: u8 = b't'; // + tag
const BY_KEY: u8 = b'k'; // + constraint key

#[derive(Default)]
struct Bucket {
    plain: Vec<u32>,
    /// discriminator -> positions
    keyed: HashMap<Vec<u8>, Vec<u32>>,
}

/// The index of a vendor's subscriptions.
pub struct MatchIndex {
    subs: Vec<Subscription>,
    buckets: HashMap<String, Bucket>,
}

/// One batch's results: `flags[i]` is item i's flag; its ids are `ids[offsets[i]..offsets[i + 1]]`
/// (ascending, each once; none unless the flag is FLAG_OK).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Matches {
    pub flags: Vec<u8>,
    pub offsets: Vec<u64>,
    pub ids: Vec<i64>,
}

/// The typed value an intent constraint offers to a bound: [lo, hi] of one kind (and currency).
struct Span<'a> {
    kind: Kind,
    lo: i128,
    hi: i128,
    cur: &'a str,
}

/// The fields of an intent body the matcher reads, borrowed from the decoded value.
struct Body<'a> {
    tokens: Vec<&'a str>,
    tags: Vec<&'a str>,
    handles: Vec<&'a str>,
    constraints: &'a [(String, Value)],
}

fn disc(tag: u8, name: &[u8], encoded: Option<&[u8]>) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + name.len() + encoded.map_or(0, <[u8]>::len));
    k.push(tag);
    k.extend_from_slice(name);
    if let Some(enc) = encoded {
        k.push(0);
        k.extend_from_slice(enc);
    }
    k
}

/// The discriminator a subscription is filed under (None: plain).
fn file_under(s: &Subscription) -> Result<Option<Vec<u8>>, String> {
    if let Some((k, v)) = s.equals.first() {
        let enc = codec::encode(v)
            .map_err(|e| format!("subscription {}: value of {k:?}: {}", s.id, e.detail()))?;
        return Ok(Some(disc(BY_EQUAL, k.as_bytes(), Some(&enc))));
    }
    if let Some(first) = s.near.as_deref().and_then(|p| p.bytes().next()) {
        return Ok(Some(vec![BY_NEAR, first]));
    }
    if let Some(h) = s.handles.first() {
        return Ok(Some(disc(BY_HANDLE, h.as_bytes(), None)));
    }
    if let Some(t) = s.tags.first() {
        return Ok(Some(disc(BY_TAG, t.as_bytes(), None)));
    }
    Ok(s.bounds
        .first()
        .map(|b| disc(BY_KEY, b.key.as_bytes(), None)))
}

/// Every discriminator of a body; true in the second place when its geohash is empty (a prefix of
/// every near prefix, so every BY_NEAR entry applies).
fn lookups(body: &Body<'_>) -> (Vec<Vec<u8>>, bool) {
    let mut keys =
        Vec::with_capacity(2 * body.constraints.len() + body.tags.len() + body.handles.len() + 1);
    for (k, v) in body.constraints {
        if let Ok(enc) = codec::encode(v) {
            keys.push(disc(BY_EQUAL, k.as_bytes(), Some(&enc)));
        }
        keys.push(disc(BY_KEY, k.as_bytes(), None));
    }
    let mut any_near = false;
    match geohash_of(body.constraints).map(|g| g.bytes().next()) {
        Some(Some(first)) => keys.push(vec![BY_NEAR, first]),
        Some(None) => any_near = true,
        None => {}
    }
    keys.extend(
        body.handles
            .iter()
            .map(|h| disc(BY_HANDLE, h.as_bytes(), None)),
    );
    keys.extend(body.tags.iter().map(|t| disc(BY_TAG, t.as_bytes(), None)));
    // A repeated tag or handle would only check the same candidates twice.
    keys.sort_unstable();
    keys.dedup();
    (keys, any_near)
}

fn get<'a>(map: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn int_of(v: &Value) -> Option<i128> {
    match v {
        Value::UInt(u) => Some(i128::from(*u)),
        Value::NInt(i) => Some(i128::from(*i)),
        _ => None,
    }
}

/// `YYYY-MM-DD` (ASCII digits) -> YYYYMMDD; anything else -> None. The calendar is not checked
/// (the tokenizer did that for real intents; a bound only needs the order).
pub fn date_number(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let mut n: i64 = 0;
    for (i, &c) in b.iter().enumerate() {
        if i == 4 || i == 7 {
            continue;
        }
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(c - b'0');
    }
    Some(n)
}

fn date_of(v: &Value) -> Option<i128> {
    match v {
        Value::Str(s) => date_number(s).map(i128::from),
        _ => None,
    }
}

/// The span of a constraint value, the first that applies: `money` (with `cur`), `int`, `date`,
/// `range` (money when it has a `cur`, else two ints, else two dates). Anything else: None.
fn span_of(c: &Value) -> Option<Span<'_>> {
    let Value::Map(m) = c else { return None };
    if let Some(money) = get(m, "money") {
        let v = int_of(money)?;
        let Some(Value::Str(cur)) = get(m, "cur") else {
            return None;
        };
        return Some(Span {
            kind: Kind::Money,
            lo: v,
            hi: v,
            cur,
        });
    }
    if let Some(n) = get(m, "int") {
        let v = int_of(n)?;
        return Some(Span {
            kind: Kind::Int,
            lo: v,
            hi: v,
            cur: "",
        });
    }
    if let Some(d) = get(m, "date") {
        let v = date_of(d)?;
        return Some(Span {
            kind: Kind::Date,
            lo: v,
            hi: v,
            cur: "",
        });
    }
    let Some(Value::Array(ends)) = get(m, "range") else {
        return None;
    };
    let [a, b] = ends.as_slice() else { return None };
    if let Some(cur) = get(m, "cur") {
        let Value::Str(cur) = cur else { return None };
        return Some(Span {
            kind: Kind::Money,
            lo: int_of(a)?,
            hi: int_of(b)?,
            cur,
        });
    }
    if let (Some(lo), Some(hi)) = (int_of(a), int_of(b)) {
        return Some(Span {
            kind: Kind::Int,
            lo,
            hi,
            cur: "",
        });
    }
    if let (Some(lo), Some(hi)) = (date_of(a), date_of(b)) {
        return Some(Span {
            kind: Kind::Date,
            lo,
            hi,
            cur: "",
        });
    }
    None
}

/// Whether some value of the span satisfies the bound (a scalar is the span [v, v]).
fn bound_holds(b: &Bound, s: &Span<'_>) -> bool {
    if s.kind != b.kind || (b.kind == Kind::Money && s.cur != b.cur) {
        return false;
    }
    let x = i128::from(b.value);
    match b.op {
        Op::Eq => s.lo <= x && x <= s.hi,
        Op::Lt => s.lo < x,
        Op::Le => s.lo <= x,
        Op::Gt => s.hi > x,
        Op::Ge => s.hi >= x,
    }
}

/// The intent's `near` geohash, when it has one of text.
fn geohash_of(constraints: &[(String, Value)]) -> Option<&str> {
    let Some(Value::Map(m)) = get(constraints, "near") else {
        return None;
    };
    match get(m, "geohash") {
        Some(Value::Str(g)) => Some(g),
        _ => None,
    }
}

fn strs(v: Option<&Value>) -> Option<Vec<&str>> {
    let Some(Value::Array(items)) = v else {
        return None;
    };
    items
        .iter()
        .map(|i| match i {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

/// The matcher's view of a body: a map with `tokens`, `tags`, `handles` (arrays of text) and
/// `constraints` (a map of maps). Other keys are ignored; anything else is malformed (None).
fn body_of(v: &Value) -> Option<Body<'_>> {
    let Value::Map(m) = v else { return None };
    let tokens = strs(get(m, "tokens"))?;
    let tags = strs(get(m, "tags"))?;
    let handles = strs(get(m, "handles"))?;
    let Some(Value::Map(constraints)) = get(m, "constraints") else {
        return None;
    };
    if !constraints.iter().all(|(_, c)| matches!(c, Value::Map(_))) {
        return None;
    }
    Some(Body {
        tokens,
        tags,
        handles,
        constraints,
    })
}

fn holds(s: &Subscription, body: &Body<'_>) -> bool {
    s.tokens.iter().all(|t| body.tokens.contains(&t.as_str()))
        && s.tags.iter().all(|t| body.tags.contains(&t.as_str()))
        && s.handles.iter().all(|h| body.handles.contains(&h.as_str()))
        && s.equals
            .iter()
            .all(|(k, v)| get(body.constraints, k) == Some(v))
        && s.near.as_deref().is_none_or(|p| {
            // Areas overlap: either geohash is a prefix of the other.
            geohash_of(body.constraints).is_some_and(|g| g.starts_with(p) || p.starts_with(g))
        })
        && s.bounds.iter().all(|b| {
            get(body.constraints, &b.key)
                .and_then(span_of)
                .is_some_and(|sp| bound_holds(b, &sp))
        })
}

impl MatchIndex {
    /// Builds the index. Every subscription needs a token and encodable equality values; the error
    /// names the first one that does not.
    pub fn new(subs: Vec<Subscription>) -> Result<MatchIndex, String> {
        if u32::try_from(subs.len()).is_err() {
            return Err("too many subscriptions".to_owned());
        }
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for s in &subs {
            for t in &s.tokens {
                *counts.entry(t.as_str()).or_default() += 1;
            }
        }
        let mut buckets: HashMap<String, Bucket> = HashMap::new();
        for (pos, s) in (0u32..).zip(&subs) {
            let key = s
                .tokens
                .iter()
                .min_by_key(|t| counts.get(t.as_str()).copied().unwrap_or(0))
                .ok_or_else(|| format!("subscription {} has no token", s.id))?;
            let bucket = buckets.entry(key.clone()).or_default();
            match file_under(s)? {
                Some(d) => bucket.keyed.entry(d).or_default().push(pos),
                None => bucket.plain.push(pos),
            }
        }
        Ok(MatchIndex { subs, buckets })
    }

    pub fn len(&self) -> usize {
        self.subs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Appends the ids of the subscriptions a decoded body matches (ascending, each once) to `out`;
    /// false (and nothing appended) when the body is malformed.
    pub fn match_value(&self, value: &Value, out: &mut Vec<i64>) -> bool {
        let Some(body) = body_of(value) else {
            return false;
        };
        let start = out.len();
        let check = |ids: &[u32], out: &mut Vec<i64>| {
            for &pos in ids {
                if let Some(s) = self.subs.get(pos as usize) {
                    if holds(s, &body) {
                        out.push(s.id);
                    }
                }
            }
        };
        let mut keys: Option<(Vec<Vec<u8>>, bool)> = None;
        for (i, &t) in body.tokens.iter().enumerate() {
            if body.tokens[..i].contains(&t) {
                continue;
            }
            let Some(bucket) = self.buckets.get(t) else {
                continue;
            };
            check(&bucket.plain, out);
            if bucket.keyed.is_empty() {
                continue;
            }
            let (keys, any_near) = keys.get_or_insert_with(|| lookups(&body));
            for k in keys.iter() {
                if let Some(ids) = bucket.keyed.get(k) {
                    check(ids, out);
                }
            }
            if *any_near {
                for (k, ids) in &bucket.keyed {
                    if k.first() == Some(&BY_NEAR) {
                        check(ids, out);
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value) -> Vec<u8> {
        codec::encode(v).unwrap()
    }

    fn s(x: &str) -> Value {
        Value::Str(x.to_owned())
    }

    fn map(entries: &[(&str, Value)]) -> Value {
        let mut m: Vec<(String, Value)> = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        m.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Map(m)
    }

    fn body_value(
        tokens: &[&str],
        tags: &[&str],
        handles: &[&str],
        cons: &[(&str, Value)],
    ) -> Value {
        let arr = |xs: &[&str]| Value::Array(xs.iter().map(|x| s(x)).collect());
        map(&[
            ("tokens", arr(tokens)),
            ("tags", arr(tags)),
            ("handles", arr(handles)),
            ("constraints", map(cons)),
            ("text", s("x")),
        ])
    }

    fn body(tokens: &[&str], tags: &[&str], handles: &[&str], cons: &[(&str, Value)]) -> Vec<u8> {
        enc(&body_value(tokens, tags, handles, cons))
    }

    fn sub(id: i64, tokens: &[&str]) -> Subscription {
        Subscription {
            id,
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn money(v: u64, cur: &str) -> Value {
        map(&[("money", Value::UInt(v)), ("cur", s(cur))])
    }

    fn bound(key: &str, op: Op, kind: Kind, value: i64, cur: &str) -> Bound {
        Bound {
            key: key.into(),
            op,
            kind,
            value,
            cur: cur.into(),
        }
    }

    fn run(index: &MatchIndex, b: &[u8]) -> Option<Vec<i64>> {
        let mut out = Vec::new();
        (index.match_body(b, &mut out) == FLAG_OK).then_some(out)
    }

    #[test]
    fn tokens_tags_handles() {
        let mut a = sub(10, &["flight"]);
        a.tags = vec!["work".into()];
        let mut b = sub(7, &["flight", "hotel"]);
        b.handles = vec!["acme".into()];
        let index = MatchIndex::new(vec![a, b, sub(3, &["taxi"])]).unwrap();
        assert_eq!(
            run(&index, &body(&["flight"], &["work"], &[], &[])),
            Some(vec![10])
        );
        assert_eq!(run(&index, &body(&["flight"], &[], &[], &[])), Some(vec![]));
        assert_eq!(
            run(
                &index,
                &body(&["hotel", "flight"], &["work"], &["acme"], &[])
            ),
            Some(vec![7, 10])
        );
        assert_eq!(
            run(&index, &body(&["taxi", "taxi"], &[], &[], &[])),
            Some(vec![3])
        );
    }

    #[test]
    fn equality_near_and_bounds() {
        let mut eq = sub(0, &["flight"]);
        eq.equals = vec![("to".into(), map(&[("place", s("JFK"))]))];
        let mut near = sub(1, &["flight"]);
        near.near = Some("dr5".into());
        let mut max = sub(2, &["flight"]);
        max.bounds = vec![bound("max", Op::Ge, Kind::Money, 20000, "USD")];
        let index = MatchIndex::new(vec![eq, near, max]).unwrap();
        let place = |p: &str| map(&[("place", s(p))]);
        let geo = |g: &str| map(&[("geohash", s(g))]);
        let one = |c: &str, v: Value| run(&index, &body(&["flight"], &[], &[], &[(c, v)]));
        assert_eq!(one("to", place("JFK")), Some(vec![0]));
        assert_eq!(one("to", place("LAX")), Some(vec![]));
        for (g, hit) in [("dr5ru", true), ("dr", true), ("dr6", false), ("", true)] {
            assert_eq!(
                one("near", geo(g)),
                Some(if hit { vec![1] } else { vec![] }),
                "{g}"
            );
        }
        assert_eq!(
            one("near", map(&[("geohash", Value::UInt(5))])),
            Some(vec![])
        );
        assert_eq!(one("max", money(20000, "USD")), Some(vec![2]));
        assert_eq!(one("max", money(19999, "USD")), Some(vec![]));
        assert_eq!(one("max", money(90000, "EUR")), Some(vec![]));
        let range = map(&[
            (
                "range",
                Value::Array(vec![Value::UInt(100), Value::UInt(20000)]),
            ),
            ("cur", s("USD")),
        ]);
        assert_eq!(one("max", range), Some(vec![2]));
    }

    #[test]
    fn dates_and_ints() {
        let mut d = sub(0, &["hotel"]);
        d.bounds = vec![bound("before", Op::Lt, Kind::Date, 20261220, "")];
        let mut n = sub(1, &["hotel"]);
        n.bounds = vec![bound("guests", Op::Eq, Kind::Int, 3, "")];
        let index = MatchIndex::new(vec![d, n]).unwrap();
        let date = |x: &str| map(&[("date", s(x))]);
        let one = |c: &str, v: Value| run(&index, &body(&["hotel"], &[], &[], &[(c, v)]));
        assert_eq!(one("before", date("2026-12-19")), Some(vec![0]));
        assert_eq!(one("before", date("2026-12-20")), Some(vec![]));
        assert_eq!(one("before", date("2026-1x-01")), Some(vec![]));
        let ints = map(&[("range", Value::Array(vec![Value::UInt(2), Value::UInt(4)]))]);
        assert_eq!(one("guests", ints), Some(vec![1]));
        assert_eq!(
            one("guests", map(&[("int", Value::Bool(true))])),
            Some(vec![])
        );
        assert_eq!(
            one("guests", map(&[("int", Value::NInt(-3))])),
            Some(vec![])
        );
    }

    #[test]
    fn malformed_bodies() {
        let index = MatchIndex::new(vec![sub(5, &["flight"])]).unwrap();
        let good = body(&["flight"], &[], &[], &[]);
        let not_map = enc(&Value::Array(vec![s("flight")]));
        let bad_tokens = enc(&map(&[
            ("tokens", Value::Array(vec![Value::UInt(1)])),
            ("tags", Value::Array(vec![])),
            ("handles", Value::Array(vec![])),
            ("constraints", map(&[])),
        ]));
        let bad_constraint = body(&["flight"], &[], &[], &[("to", s("JFK"))]);
        let batch: Vec<&[u8]> = vec![
            &good,
            b"\xc1garbage",
            &not_map,
            &[],
            &bad_tokens,
            &bad_constraint,
            &good,
        ];
        let m = index.match_bodies(&batch);
        assert_eq!(m.flags, vec![0, 1, 1, 1, 1, 1, 0]);
        assert_eq!(m.offsets, vec![0, 1, 1, 1, 1, 1, 1, 2]);
        assert_eq!(m.ids, vec![5, 5]);
    }

    #[test]
    fn envelopes() {
        let index = MatchIndex::new(vec![sub(1, &["flight"])]).unwrap();
        let make = |kind: &str, body: Value| {
            envelope::encode_envelope(
                Value::Bin(vec![7; 32]),
                body,
                Value::UInt(1),
                Value::UInt(2),
                s(kind),
                Value::Bin(vec![0; 64]),
            )
            .unwrap()
        };
        let intent = make("intent", body_value(&["flight"], &[], &[], &[]));
        let offer = make("offer", body_value(&["flight"], &[], &[], &[]));
        let odd = make("intent", s("flight"));
        // The empty item is how the binding passes an oversized one.
        let batch: Vec<&[u8]> = vec![&intent, &offer, &odd, b"\x80", &intent[1..], &[]];
        let m = index.match_envelopes(&batch);
        assert_eq!(
            m.flags,
            vec![
                FLAG_OK,
                FLAG_NOT_INTENT,
                FLAG_MALFORMED,
                FLAG_MALFORMED,
                FLAG_MALFORMED,
                FLAG_MALFORMED
            ]
        );
        assert_eq!(m.ids, vec![1]);
    }

    /// Damaged copies of real bodies and envelopes, and random bytes: flags, never a panic, and
    /// every item's ids sorted and distinct.
    #[test]
    fn random_damage_never_panics() {
        let mut a = sub(1, &["flight"]);
        a.near = Some("dr".into());
        let mut b = sub(2, &["flight", "hotel"]);
        b.equals = vec![("to".into(), map(&[("place", s("JFK"))]))];
        let mut c = sub(3, &["hotel"]);
        c.bounds = vec![bound("max", Op::Le, Kind::Money, 500, "USD")];
        let index = MatchIndex::new(vec![a, b, c]).unwrap();
        let good = body_value(
            &["flight", "hotel"],
            &["work"],
            &["acme"],
            &[
                ("to", map(&[("place", s("JFK"))])),
                ("near", map(&[("geohash", s("dr5"))])),
                ("max", money(400, "USD")),
            ],
        );
        let raw_body = enc(&good);
        let raw_env = envelope::encode_envelope(
            Value::Bin(vec![7; 32]),
            good,
            Value::UInt(1),
            Value::UInt(2),
            s("intent"),
            Value::Bin(vec![0; 64]),
        )
        .unwrap();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..3000 {
            let mut item = match round % 3 {
                0 => raw_body.clone(),
                1 => raw_env.clone(),
                _ => (0..next() % 48).map(|_| next() as u8).collect(),
            };
            for _ in 0..1 + next() % 3 {
                if item.is_empty() {
                    break;
                }
                let at = (next() as usize) % item.len();
                match next() % 3 {
                    0 => item[at] ^= 1 << (next() % 8),
                    1 => item.truncate(at),
                    _ => item[at] = next() as u8,
                }
            }
            for m in [
                index.match_bodies(&[&item]),
                index.match_envelopes(&[&item]),
            ] {
                assert_eq!(m.offsets.len(), 2);
                assert!(m.ids.windows(2).all(|w| w[0] < w[1]));
                assert!(m.flags[0] == FLAG_OK || m.ids.is_empty());
            }
        }
    }

    #[test]
    fn construction_errors() {
        assert!(MatchIndex::new(vec![sub(0, &[])]).is_err());
        let mut deep = Value::Nil;
        for _ in 0..20 {
            deep = Value::Array(vec![deep]);
        }
        let mut bad = sub(1, &["x"]);
        bad.equals = vec![("to".into(), deep)];
        assert!(MatchIndex::new(vec![bad]).is_err());
        assert!(MatchIndex::new(vec![]).unwrap().is_empty());
    }
}
