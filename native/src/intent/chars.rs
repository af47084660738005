//! The intent tokenizer's character classes (PROTOCOL.md section 5), from the pinned Unicode tables,
//! and the checking and lower-casing of a ?token / #tag / @handle name.

use super::words::{tail, Word};
use super::{tables, SyntaxError, LEADING_PUNCTUATION, MAX_NAME_CHARS, TRAILING_PUNCTUATION};

/// Unicode White_Space (a fixed list; PROTOCOL.md section 5).
pub fn is_space(c: char) -> bool {
    matches!(
        c,
        '\u{0009}'..='\u{000D}'
            | '\u{0020}'
            | '\u{0085}'
            | '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// One of LEADING_PUNCTUATION. Most words start with a letter or digit, which no list holds: they
/// are answered without a scan of it.
pub fn is_leading(c: char) -> bool {
    !c.is_ascii_alphanumeric() && LEADING_PUNCTUATION.contains(c)
}

/// One of TRAILING_PUNCTUATION (a letter or digit answered without a scan, as `is_leading`).
pub fn is_trailing(c: char) -> bool {
    !c.is_ascii_alphanumeric() && TRAILING_PUNCTUATION.contains(c)
}

/// Whether `c` falls in one of the sorted inclusive `ranges`.
fn in_ranges(ranges: &[(u32, u32)], c: char) -> bool {
    let cp = c as u32;
    // The last range starting at or before cp.
    let i = ranges.partition_point(|&(lo, _)| lo <= cp);
    i > 0 && cp <= ranges[i - 1].1
}

/// A letter, mark or decimal digit of the pinned Unicode version.
pub fn is_name_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    in_ranges(tables::NAME_RANGES, c)
}

const ZWNJ: char = '\u{200C}';
const ZWJ: char = '\u{200D}';
const MIDDLE_DOT: char = '\u{00B7}';

/// UAX #31 A2/B: `/$L $M* $V $M1* joiner/` ends at `name[i]`.
fn after_virama(name: &[char], i: usize) -> bool {
    let mut j = i;
    while j > 0 {
        j -= 1;
        if in_ranges(tables::VIRAMA_RANGES, name[j]) {
            let mut k = j;
            while k > 0 && in_ranges(tables::MN_RANGES, name[k - 1]) {
                k -= 1;
            }
            if k > 0 && in_ranges(tables::LETTER_RANGES, name[k - 1]) {
                return true;
            }
        }
        if !in_ranges(tables::MN_CCC_RANGES, name[j]) {
            return false;
        }
    }
    false
}

/// UAX #31 A1: `/$LJ $T* ZWNJ $T* $RJ/` around `name[i]`.
fn between_joining_letters(name: &[char], i: usize) -> bool {
    let mut j = i;
    while j > 0 && in_ranges(tables::JOIN_TRANSPARENT_RANGES, name[j - 1]) {
        j -= 1;
    }
    let mut k = i + 1;
    while k < name.len() && in_ranges(tables::JOIN_TRANSPARENT_RANGES, name[k]) {
        k += 1;
    }
    j > 0
        && in_ranges(tables::JOIN_LEFT_RANGES, name[j - 1])
        && k < name.len()
        && in_ranges(tables::JOIN_RIGHT_RANGES, name[k])
}

/// Why the joiner or middle dot at `name[i]` may not stand there, or None when it may.
fn context_refusal(name: &[char], i: usize) -> Option<&'static str> {
    let c = name[i];
    if c == MIDDLE_DOT {
        // after a letter and its marks (so a lower-cased İ·l, i + U+0307, stays valid)
        let mut j = i;
        while j > 0 && in_ranges(tables::MN_RANGES, name[j - 1]) {
            j -= 1;
        }
        let inside = j > 0
            && in_ranges(tables::LETTER_RANGES, name[j - 1])
            && i + 1 < name.len()
            && in_ranges(tables::LETTER_RANGES, name[i + 1]);
        return (!inside).then_some(
            "U+00B7 (middle dot) in a name only between two letters, as in col\u{00B7}lecci\u{00F3}",
        );
    }
    if after_virama(name, i) || (c == ZWNJ && between_joining_letters(name, i)) {
        return None;
    }
    Some(if c == ZWNJ {
        "U+200C (zero width non-joiner) in a name only after a virama or between joining letters (UAX #31)"
    } else {
        "U+200D (zero width joiner) in a name only after a virama (UAX #31)"
    })
}

fn push_lower(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    match tables::LOWER.binary_search_by_key(&(c as u32), |&(cp, _)| cp) {
        Ok(i) => out.push_str(tables::LOWER[i].1),
        Err(_) => out.push(c),
    }
}

/// How a character is named in an error: `'*' (U+002A)` for printable ASCII, else `U+00E9`.
fn show(c: char) -> String {
    if ('!'..='~').contains(&c) {
        format!("'{c}' (U+{:04X})", c as u32)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

/// The lower-cased name of a `?token`, `#tag` or `@handle` word (its sigil is one ASCII byte).
pub(super) fn name(word: Word<'_>, sigil: char) -> Result<String, SyntaxError> {
    let name = tail(word.text, 1);
    if name.is_empty() {
        return Err(word.err(format!("empty name after '{sigil}'")));
    }
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if is_name_char(c) || c == '_' || c == '-' || (sigil == '@' && c == '.') {
            continue;
        }
        if matches!(c, ZWNJ | ZWJ | MIDDLE_DOT) {
            match context_refusal(&chars, i) {
                None => continue,
                Some(message) => return Err(word.err(message)),
            }
        }
        return Err(word.err(format!("invalid character {} in a name", show(c))));
    }
    if chars.len() > MAX_NAME_CHARS {
        return Err(word.err(format!("name longer than {MAX_NAME_CHARS} characters")));
    }
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        push_lower(&mut out, c);
    }
    Ok(out)
}
