//! The intent body check of `node.intents.check_body` (PROTOCOL.md section 5): a body is exactly
//! what the tokenizer gives for its text and terms, compared as canonical bytes.
//!
//! The pass reads only `text` and `terms` from the received bytes and writes the expected body's
//! canonical bytes straight from the parsed text, with no value tree: equal bytes make it the same
//! body, so nothing else of it need be decoded. The tree (`expected_body`) is built only when the
//! matcher needs it.

use crate::codec::{
    write_array_header, write_map_header, write_str, write_uint, Head, Reader, Value,
};
use crate::intent::{self, Constraint, Intent};

/// The terms an intent may carry, as node/intents.py's KNOWN_TERMS.
pub const KNOWN_TERMS: [&str; 5] = [
    "contact-only-about-this",
    "no-resale",
    "delete-after-use",
    "no-profiling",
    "no-third-parties",
];
/// The keys of an intent body, in canonical order.
const BODY_KEYS: [&str; 7] = [
    "constraints",
    "handles",
    "tags",
    "terms",
    "text",
    "tokens",
    "words",
];

/// A checked intent body: its parsed text and its terms, both borrowed from the body's bytes.
pub struct Checked<'a> {
    pub intent: Intent<'a>,
    pub terms: Vec<&'a str>,
    pub text: &'a str,
}

impl Checked<'_> {
    /// The body as a value (what decoding its bytes gives).
    pub fn value(&self) -> Value {
        body_value(&self.intent, self.text, &self.terms)
    }
}

/// The checked body whose canonical bytes are `raw`, when it is exactly what section 5 gives for its
/// text and terms; None otherwise. Terms must be known, distinct and already normal; the comparison
/// is of canonical bytes, so types are strict.
pub fn check(raw: &[u8]) -> Option<Checked<'_>> {
    let (text, terms) = text_and_terms(raw)?;
    let intent = intent::parse(text).ok()?;
    let mut expected = Vec::with_capacity(raw.len());
    write_body(&mut expected, &intent, text, &terms)?;
    (expected == raw).then_some(Checked {
        intent,
        terms,
        text,
    })
}

/// The body section 5 gives for `text` and `terms` as a value; `None` when the text does not parse.
pub fn expected_body(text: &str, terms: &[&str]) -> Option<Value> {
    Some(body_value(&intent::parse(text).ok()?, text, terms))
}

/// An intent body's `text` and `terms`, read from its canonical bytes `raw` without building it:
/// None unless it is a map of exactly BODY_KEYS whose `text` is text and whose terms are known,
/// distinct and text.
fn text_and_terms(raw: &[u8]) -> Option<(&str, Vec<&str>)> {
    let mut r = Reader::new(raw);
    let Ok(Head::Map(n)) = r.head(2) else {
        return None;
    };
    if n as usize != BODY_KEYS.len() {
        return None;
    }
    let (mut text, mut terms) = (None, Vec::new());
    let mut prev = None;
    for want in BODY_KEYS {
        let key = r.key(3, prev).ok()?;
        if key != want {
            return None;
        }
        prev = Some(key);
        match key {
            "terms" => {
                let Ok(Head::Array(m)) = r.head(3) else {
                    return None;
                };
                for _ in 0..m {
                    match r.head(4) {
                        Ok(Head::Str(t)) if KNOWN_TERMS.contains(&t) && !terms.contains(&t) => {
                            terms.push(t)
                        }
                        _ => return None,
                    }
                }
            }
            "text" => match r.head(3) {
                Ok(Head::Str(t)) => text = Some(t),
                _ => return None,
            },
            _ => r.skip_value(3).ok()?,
        }
    }
    r.finish().ok()?;
    Some((text?, terms))
}

/// Appends the canonical bytes of the body for `intent` (parsed from `text`) and `terms`: what
/// `codec::encode(&body_value(..))` gives. None for what that refuses (a constraint key twice).
fn write_body(out: &mut Vec<u8>, intent: &Intent<'_>, text: &str, terms: &[&str]) -> Option<()> {
    write_map_header(out, BODY_KEYS.len()).ok()?;
    write_str(out, "constraints").ok()?;
    let mut constraints: Vec<&(&str, Constraint<'_>)> = intent.constraints.iter().collect();
    constraints.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    if constraints.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    write_map_header(out, constraints.len()).ok()?;
    for (key, c) in constraints {
        write_str(out, key).ok()?;
        write_constraint(out, c)?;
    }
    write_str(out, "handles").ok()?;
    write_strs(out, &intent.handles)?;
    write_str(out, "tags").ok()?;
    write_strs(out, &intent.tags)?;
    write_str(out, "terms").ok()?;
    write_strs(out, terms)?;
    write_str(out, "text").ok()?;
    write_str(out, text).ok()?;
    write_str(out, "tokens").ok()?;
    write_strs(out, &intent.tokens)?;
    write_str(out, "words").ok()?;
    write_strs(out, &intent.words)
}

fn write_strs<S: AsRef<str>>(out: &mut Vec<u8>, items: &[S]) -> Option<()> {
    write_array_header(out, items.len()).ok()?;
    items
        .iter()
        .try_for_each(|s| write_str(out, s.as_ref()).ok())
}

/// A constraint's map, its keys in canonical order ("cur" before "money" and "range").
fn write_constraint(out: &mut Vec<u8>, c: &Constraint<'_>) -> Option<()> {
    let one = |out: &mut Vec<u8>, key: &str| {
        write_map_header(out, 1).ok()?;
        write_str(out, key).ok()
    };
    let pair = |out: &mut Vec<u8>| write_array_header(out, 2).ok();
    match c {
        Constraint::Money { minor, cur } => {
            write_map_header(out, 2).ok()?;
            write_str(out, "cur").ok()?;
            write_str(out, cur).ok()?;
            write_str(out, "money").ok()?;
            write_uint(out, *minor);
        }
        Constraint::MoneyRange { lo, hi, cur } => {
            write_map_header(out, 2).ok()?;
            write_str(out, "cur").ok()?;
            write_str(out, cur).ok()?;
            write_str(out, "range").ok()?;
            pair(out)?;
            write_uint(out, *lo);
            write_uint(out, *hi);
        }
        Constraint::Date(d) => {
            one(out, "date")?;
            write_str(out, d).ok()?;
        }
        Constraint::DateRange(lo, hi) => {
            one(out, "range")?;
            pair(out)?;
            write_str(out, lo).ok()?;
            write_str(out, hi).ok()?;
        }
        Constraint::Int(n) => {
            one(out, "int")?;
            write_uint(out, *n);
        }
        Constraint::IntRange(lo, hi) => {
            one(out, "range")?;
            pair(out)?;
            write_uint(out, *lo);
            write_uint(out, *hi);
        }
        Constraint::Geohash(g) => {
            one(out, "geohash")?;
            write_str(out, g).ok()?;
        }
        Constraint::Place(p) => {
            one(out, "place")?;
            write_str(out, p).ok()?;
        }
        Constraint::Text(t) => {
            one(out, "text")?;
            write_str(out, t).ok()?;
        }
    }
    Some(())
}

fn constraint_value(c: &Constraint<'_>) -> Value {
    let s = |t: &str| Value::Str(t.to_owned());
    let map = |entries: Vec<(&str, Value)>| {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    };
    match c {
        Constraint::Money { minor, cur } => {
            map(vec![("money", Value::UInt(*minor)), ("cur", s(cur))])
        }
        Constraint::MoneyRange { lo, hi, cur } => map(vec![
            (
                "range",
                Value::Array(vec![Value::UInt(*lo), Value::UInt(*hi)]),
            ),
            ("cur", s(cur)),
        ]),
        Constraint::Date(d) => map(vec![("date", s(d))]),
        Constraint::DateRange(lo, hi) => map(vec![("range", Value::Array(vec![s(lo), s(hi)]))]),
        Constraint::Int(n) => map(vec![("int", Value::UInt(*n))]),
        Constraint::IntRange(lo, hi) => map(vec![(
            "range",
            Value::Array(vec![Value::UInt(*lo), Value::UInt(*hi)]),
        )]),
        Constraint::Geohash(g) => map(vec![("geohash", s(g))]),
        Constraint::Place(p) => map(vec![("place", s(p))]),
        Constraint::Text(t) => map(vec![("text", s(t))]),
    }
}

fn strs<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|x| Value::Str(x.as_ref().to_owned()))
            .collect(),
    )
}

fn body_value(parsed: &Intent<'_>, text: &str, terms: &[&str]) -> Value {
    let constraints = Value::Map(
        parsed
            .constraints
            .iter()
            .map(|(k, c)| ((*k).to_owned(), constraint_value(c)))
            .collect(),
    );
    Value::Map(vec![
        ("constraints".to_owned(), constraints),
        ("handles".to_owned(), strs(&parsed.handles)),
        ("tags".to_owned(), strs(&parsed.tags)),
        ("terms".to_owned(), strs(terms)),
        ("text".to_owned(), Value::Str(text.to_owned())),
        ("tokens".to_owned(), strs(&parsed.tokens)),
        ("words".to_owned(), strs(&parsed.words)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    /// The bytes written straight from the parse are the canonical encoding of the body value, for
    /// every constraint type and for texts with tags, handles and free words.
    #[test]
    fn written_bytes_are_the_encoded_value() {
        let texts = [
            "?flight SFO->JFK before:2027-01-10 max:400USD",
            "?hotel #quiet @acme near:9q8yy after:2027-02-01 nights:3 seats:2",
            "?sofa budget:100..250EUR on:2027-03-01..2027-03-09 guests:2..4 colour:green",
            "?tutor \u{201C}maths\u{201D} weekly, online! from:LHR",
            "?taxi ?Cab to:MUC qty:1 min:12.50EUR",
        ];
        let mut kinds = std::collections::HashSet::new();
        let term_sets: [&[&str]; 3] = [&[], &["no-resale"], &["no-profiling", "delete-after-use"]];
        for text in texts {
            let Ok(parsed) = intent::parse(text) else {
                panic!("{text:?} should parse");
            };
            for (_, c) in &parsed.constraints {
                kinds.insert(std::mem::discriminant(c));
            }
            for terms in term_sets {
                let value = body_value(&parsed, text, terms);
                let mut written = Vec::new();
                assert!(write_body(&mut written, &parsed, text, terms).is_some());
                assert_eq!(
                    Some(written.clone()),
                    codec::encode(&value).ok(),
                    "{text:?}"
                );
                let checked = check(&written).map(|c| c.value());
                assert_eq!(checked, Some(value), "{text:?}");
            }
        }
        assert_eq!(kinds.len(), 9, "every kind of constraint is written");
    }
}
