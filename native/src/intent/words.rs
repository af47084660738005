//! Cutting an intent's text into words: split at white space, leading and trailing punctuation
//! stripped, each word with the character offset an error reports.
//!
//! Words and values are sub-slices of the text cut only at positions that `char_indices`, `find`
//! or an ASCII byte gave, so always on character boundaries; `get` is used anyway, so a mistake
//! would give an empty slice rather than a panic.

use super::{is_leading, is_space, is_trailing, SyntaxError};

pub(super) fn sub(s: &str, from: usize, to: usize) -> &str {
    s.get(from..to).unwrap_or("")
}

pub(super) fn tail(s: &str, from: usize) -> &str {
    s.get(from..).unwrap_or("")
}

/// The byte index of the first `a` followed by `b` (both ASCII, so the index is a boundary).
pub(super) fn find2(s: &str, a: u8, b: u8) -> Option<usize> {
    s.as_bytes().windows(2).position(|w| w[0] == a && w[1] == b)
}

/// A word after stripping punctuation, and the character offset of its first character.
#[derive(Clone, Copy)]
pub(super) struct Word<'a> {
    pub(super) text: &'a str,
    pub(super) offset: usize,
    /// The first stripped trailing character was `:` (as in `max:`).
    pub(super) colon_after: bool,
}

impl Word<'_> {
    pub(super) fn err(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            message: message.into(),
            word: self.text.to_owned(),
            offset: self.offset,
        }
    }
}

/// `raw` (starting at character `offset`) without its leading and trailing punctuation, if
/// anything is left.
fn strip(raw: &str, offset: usize) -> Option<Word<'_>> {
    let (mut lead_bytes, mut lead_chars) = (0, 0);
    for c in raw.chars() {
        if !is_leading(c) {
            break;
        }
        lead_bytes += c.len_utf8();
        lead_chars += 1;
    }
    let rest = tail(raw, lead_bytes);
    let mut end = rest.len();
    for c in rest.chars().rev() {
        if !is_trailing(c) {
            break;
        }
        end -= c.len_utf8();
    }
    let text = sub(rest, 0, end);
    (!text.is_empty()).then_some(Word {
        text,
        offset: offset + lead_chars,
        colon_after: tail(rest, end).starts_with(':'),
    })
}

/// Calls `f` on every white-space separated word, punctuation stripped, empty ones skipped.
pub(super) fn for_each_word<'a>(
    text: &'a str,
    mut f: impl FnMut(Word<'a>) -> Result<(), SyntaxError>,
) -> Result<(), SyntaxError> {
    let mut start: Option<(usize, usize)> = None; // (byte, char) where the current word began
    for (chars, (byte, c)) in text.char_indices().enumerate() {
        if is_space(c) {
            if let Some((b, o)) = start.take() {
                if let Some(w) = strip(sub(text, b, byte), o) {
                    f(w)?;
                }
            }
        } else if start.is_none() {
            start = Some((byte, chars));
        }
    }
    if let Some((b, o)) = start {
        if let Some(w) = strip(tail(text, b), o) {
            f(w)?;
        }
    }
    Ok(())
}
