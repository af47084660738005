//! The intent tokenizer (PROTOCOL.md section 5): text in, tokens, tags, handles, typed constraints
//! and free words out, or a `SyntaxError` naming the offending word and its offset.
//!
//! Pure Rust, no pyo3. Works on `char`s only (offsets count Unicode code points, never bytes), so no
//! input can make it slice a `str` off a character boundary or panic. Its Unicode facts come from
//! `intent_tables.rs`, generated from one pinned Unicode version and shared with the Python reference
//! (`node/reference/intent.py`), which must agree with this module on every input.
//!
//! The work is split by concern: `chars` (character classes, and checking and lower-casing a
//! ?token / #tag / @handle name), `words` (cutting the text into punctuation-stripped words) and
//! `values` (the typed `key:value` constraints: money, dates, integers, geohashes, places).

mod chars;
#[cfg(test)]
mod tests;
mod values;
mod words;

mod tables {
    include!("intent_tables.rs");
}

pub use tables::UNICODE_VERSION;

/// The longest text accepted, in characters (code points).
pub const MAX_TEXT_CHARS: usize = 1000;
/// The longest ?token / #tag / @handle name (without its sigil), in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Integers, and money in minor units, have at most this many digits (so they stay below 2^63).
pub const MAX_INT_DIGITS: usize = 18;

/// Characters stripped from the start of a word, repeatedly.
pub const LEADING_PUNCTUATION: &str = concat!(
    "\"'([{<\u{201C}\u{2018}\u{00AB}\u{00BF}\u{00A1}",
    // CJK and full-width brackets and quotes: 「『（【〈《〔［｛｢＂＇〝
    "\u{300C}\u{300E}\u{FF08}\u{3010}\u{3008}\u{300A}\u{3014}\u{FF3B}\u{FF5B}\u{FF62}\u{FF02}\u{FF07}\u{301D}",
);
/// Characters stripped from the end of a word, repeatedly.
pub const TRAILING_PUNCTUATION: &str = concat!(
    "\"')]}>.,;:!?\u{201D}\u{2019}\u{00BB}\u{2026}",
    // CJK and full-width stops, commas, marks, closing brackets and quotes:
    // 。、！？」』）】〉》〕］｝｣｡､，．；：＂＇〞〟‥
    "\u{3002}\u{3001}\u{FF01}\u{FF1F}\u{300D}\u{300F}\u{FF09}\u{3011}\u{3009}\u{300B}\u{3015}\u{FF3D}\u{FF5D}\u{FF63}\u{FF61}\u{FF64}",
    "\u{FF0C}\u{FF0E}\u{FF1B}\u{FF1A}\u{FF02}\u{FF07}\u{301E}\u{301F}\u{2025}",
    // Arabic comma, semicolon, question mark, Urdu full stop; Devanagari danda, double danda
    "\u{060C}\u{061B}\u{061F}\u{06D4}\u{0964}\u{0965}",
);

use chars::name;
pub use chars::{is_leading, is_name_char, is_space, is_trailing};
pub use values::minor_digits;
use values::{is_typed_key, key_value, route, typed};
use words::for_each_word;

/// A typed `key:value` constraint, as it is encoded in the intent body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Constraint<'a> {
    /// `{"money": minor, "cur": CUR}`
    Money { minor: u64, cur: String },
    /// `{"range": [lo, hi], "cur": CUR}`
    MoneyRange { lo: u64, hi: u64, cur: String },
    /// `{"date": "YYYY-MM-DD"}`
    Date(&'a str),
    /// `{"range": ["YYYY-MM-DD", "YYYY-MM-DD"]}`
    DateRange(&'a str, &'a str),
    /// `{"int": n}`
    Int(u64),
    /// `{"range": [lo, hi]}`
    IntRange(u64, u64),
    /// `{"geohash": "9q8yy"}`
    Geohash(String),
    /// `{"place": "SFO"}`
    Place(String),
    /// `{"text": "…"}`
    Text(&'a str),
}

/// A parsed intent, borrowing from its text. `constraints` keeps the order in which keys appeared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Intent<'a> {
    pub tokens: Vec<String>,
    pub tags: Vec<String>,
    pub handles: Vec<String>,
    pub constraints: Vec<(&'a str, Constraint<'a>)>,
    pub words: Vec<&'a str>,
}

impl<'a> Intent<'a> {
    pub fn constraint(&self, key: &str) -> Option<&Constraint<'a>> {
        self.constraints
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, c)| c)
    }
}

/// Why a text was refused: `word` is the offending word (punctuation stripped) and `offset` the
/// character offset where it starts; both empty/0 when the text as a whole is at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub word: String,
    pub offset: usize,
}

impl SyntaxError {
    fn whole(message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            message: message.into(),
            word: String::new(),
            offset: 0,
        }
    }
}

impl core::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.word.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(
                f,
                "{} at {:?} (character {})",
                self.message, self.word, self.offset
            )
        }
    }
}

impl std::error::Error for SyntaxError {}

pub const MSG_EMPTY: &str = "text is empty";
pub const MSG_NO_TOKEN: &str = "no ?token: say what you want with at least one, such as ?flight";
pub const MSG_NOT_UNICODE: &str = "text is not valid Unicode";

pub fn msg_too_long() -> String {
    format!("text is longer than {MAX_TEXT_CHARS} characters")
}

/// Parses an intent's text. Never panics.
pub fn parse(text: &str) -> Result<Intent<'_>, SyntaxError> {
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(SyntaxError::whole(msg_too_long()));
    }
    if text.chars().all(is_space) {
        return Err(SyntaxError::whole(MSG_EMPTY));
    }
    let mut intent = Intent::default();
    for_each_word(text, |word| {
        let sigil = word.text.chars().next().unwrap_or(' ');
        if matches!(sigil, '?' | '#' | '@') {
            let name = name(word, sigil)?;
            let list = match sigil {
                '?' => &mut intent.tokens,
                '#' => &mut intent.tags,
                _ => &mut intent.handles,
            };
            if !list.contains(&name) {
                list.push(name);
            }
        } else if let Some((from, to)) = route(word.text) {
            for key in ["from", "to"] {
                if intent.constraint(key).is_some() {
                    return Err(word.err(format!("constraint '{key}' given twice")));
                }
            }
            intent.constraints.push(("from", Constraint::Place(from)));
            intent.constraints.push(("to", Constraint::Place(to)));
        } else if let Some((key, value)) = key_value(word.text) {
            if intent.constraint(key).is_some() {
                return Err(word.err(format!("constraint '{key}' given twice")));
            }
            let constraint = typed(key, value).map_err(|m| word.err(m))?;
            intent.constraints.push((key, constraint));
        } else if word.colon_after && is_typed_key(word.text) {
            // `max:` with no value: refused with the key's own message (typed refuses "")
            let message = typed(word.text, "").err().unwrap_or_default();
            return Err(word.err(message));
        } else {
            intent.words.push(word.text);
        }
        Ok(())
    })?;
    if intent.tokens.is_empty() {
        return Err(SyntaxError::whole(MSG_NO_TOKEN));
    }
    Ok(intent)
}
