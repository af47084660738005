//! How the matcher reads an intent body: the fields it looks at and the typed span of a constraint
//! value. Anything it cannot read is malformed (None), never a panic.

use super::{Kind, Op};
use crate::codec::Value;

/// The typed value an intent constraint offers to a bound: [lo, hi] of one kind (and currency).
pub(super) struct Span<'a> {
    pub kind: Kind,
    pub lo: i128,
    pub hi: i128,
    pub cur: &'a str,
}

/// The fields of an intent body the matcher reads, borrowed from the decoded value.
pub(super) struct Body<'a> {
    pub tokens: Vec<&'a str>,
    pub tags: Vec<&'a str>,
    pub handles: Vec<&'a str>,
    pub constraints: &'a [(String, Value)],
}

pub(super) fn get<'a>(map: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
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
pub(super) fn span_of(c: &Value) -> Option<Span<'_>> {
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

/// Whether some value of the span satisfies `op value` of `kind` (in currency `cur` for money; a
/// scalar is the span [v, v]).
pub(super) fn bound_holds(op: Op, kind: Kind, value: i64, cur: &[u8], s: &Span<'_>) -> bool {
    if s.kind != kind || (kind == Kind::Money && s.cur.as_bytes() != cur) {
        return false;
    }
    let x = i128::from(value);
    match op {
        Op::Eq => s.lo <= x && x <= s.hi,
        Op::Lt => s.lo < x,
        Op::Le => s.lo <= x,
        Op::Gt => s.hi > x,
        Op::Ge => s.hi >= x,
    }
}

/// The intent's `near` geohash, when it has one of text.
pub(super) fn geohash_of(constraints: &[(String, Value)]) -> Option<&str> {
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
pub(super) fn body_of(v: &Value) -> Option<Body<'_>> {
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
