//! The intent body check of `node.intents.check_body` (PROTOCOL.md section 5): a body is exactly
//! what the tokenizer gives for its text and terms, compared as canonical bytes.
//!
//! The pass reads only `text` and `terms` from the received bytes and writes the expected body's
//! canonical bytes straight from the parsed text, with no value tree: equal bytes make it the same
//! body, so nothing else of it need be decoded. The writer is the one description of a body here:
//! its value (`Checked::value`, `expected_body`) is what decoding those bytes gives, built only when
//! the matcher needs it.

use crate::codec::{
    self, write_array_header, write_map_header, write_str, write_uint, Head, Reader, Value,
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

/// A checked intent body: its parsed text, borrowed from the body's bytes, and those bytes.
pub struct Checked<'a> {
    pub intent: Intent<'a>,
    raw: &'a [u8],
}

impl Checked<'_> {
    /// The body as a value: its bytes decoded (canonical, being what `check` wrote; None would mean
    /// the writer wrote what the decoder refuses).
    pub fn value(&self) -> Option<Value> {
        codec::decode_uncapped(self.raw).ok()
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
    (expected == raw).then_some(Checked { intent, raw })
}

/// The body section 5 gives for `text` and `terms` as a value; `None` when the text does not parse.
pub fn expected_body(text: &str, terms: &[&str]) -> Option<Value> {
    let mut bytes = Vec::new();
    write_body(&mut bytes, &intent::parse(text).ok()?, text, terms)?;
    codec::decode_uncapped(&bytes).ok()
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

/// Appends the canonical bytes of the body for `intent` (parsed from `text`) and `terms`: every map's
/// keys in bytewise order, every length in its shortest form. None for a constraint key twice (which
/// the tokenizer refuses).
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
    // The map's header and its keys up to the value: `{key: …}`, or `{"cur": cur, key: …}` for money.
    let open = |out: &mut Vec<u8>, cur: Option<&str>, key: &str| {
        write_map_header(out, 1 + usize::from(cur.is_some())).ok()?;
        if let Some(cur) = cur {
            write_str(out, "cur").ok()?;
            write_str(out, cur).ok()?;
        }
        write_str(out, key).ok()
    };
    let pair = |out: &mut Vec<u8>| write_array_header(out, 2).ok();
    match c {
        Constraint::Money { minor, cur } => {
            open(out, Some(cur), "money")?;
            write_uint(out, *minor);
        }
        Constraint::MoneyRange { lo, hi, cur } => {
            open(out, Some(cur), "range")?;
            pair(out)?;
            write_uint(out, *lo);
            write_uint(out, *hi);
        }
        Constraint::IntRange(lo, hi) => {
            open(out, None, "range")?;
            pair(out)?;
            write_uint(out, *lo);
            write_uint(out, *hi);
        }
        Constraint::DateRange(lo, hi) => {
            open(out, None, "range")?;
            pair(out)?;
            write_str(out, lo).ok()?;
            write_str(out, hi).ok()?;
        }
        Constraint::Int(n) => {
            open(out, None, "int")?;
            write_uint(out, *n);
        }
        Constraint::Date(d) => open(out, None, "date").and_then(|()| write_str(out, d).ok())?,
        Constraint::Geohash(g) => {
            open(out, None, "geohash").and_then(|()| write_str(out, g).ok())?
        }
        Constraint::Place(p) => open(out, None, "place").and_then(|()| write_str(out, p).ok())?,
        Constraint::Text(t) => open(out, None, "text").and_then(|()| write_str(out, t).ok())?,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes written straight from the parse are canonical (the strict decoder takes them and
    /// encoding the value gives them back) for every kind of constraint and for texts with tags,
    /// handles and free words, and `check` accepts them with that value. (That they are the body
    /// node.intents gives is tests/test_ingest.py's: native against check_body.)
    #[test]
    fn written_bytes_are_canonical() {
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
                let mut written = Vec::new();
                assert!(write_body(&mut written, &parsed, text, terms).is_some());
                let value = codec::decode_uncapped(&written).expect("canonical");
                assert_eq!(
                    codec::encode(&value).ok(),
                    Some(written.clone()),
                    "{text:?}"
                );
                assert_eq!(expected_body(text, terms), Some(value.clone()), "{text:?}");
                let checked = check(&written).and_then(|c| c.value());
                assert_eq!(checked, Some(value), "{text:?}");
            }
        }
        assert_eq!(kinds.len(), 9, "every kind of constraint is written");
    }

    /// One body as the Python reference encodes it (`node.intents`: parse_intent(...).body, then the
    /// reference codec): money, a money range, a date, places, a tag and a term, byte for byte.
    #[test]
    fn a_body_is_the_reference_implementations() {
        let text = "?sofa budget:100..250EUR max:40USD on:2027-03-01 SFO->JFK #quiet";
        let reference = "87ab636f6e73747261696e747385a662756467657482a3637572a3455552a572616e676592cd2710cd61a8a46672\
            6f6d81a5706c616365a353464fa36d617882a3637572a3555344a56d6f6e6579cd0fa0a26f6e81a464617465aa323032\
            372d30332d3031a2746f81a5706c616365a34a464ba768616e646c657390a47461677391a57175696574a57465726d73\
            91a96e6f2d726573616c65a474657874d9403f736f6661206275646765743a3130302e2e323530455552206d61783a34\
            30555344206f6e3a323032372d30332d30312053464f2d3e4a464b20237175696574a6746f6b656e7391a4736f6661a5\
            776f72647390";
        let Ok(parsed) = intent::parse(text) else {
            panic!("{text:?} should parse");
        };
        let mut written = Vec::new();
        assert!(write_body(&mut written, &parsed, text, &["no-resale"]).is_some());
        let hex: String = written.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, reference);
        assert!(check(&written).is_some());
    }
}
