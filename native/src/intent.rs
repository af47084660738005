//! The intent tokenizer (PROTOCOL.md section 5): text in, tokens, tags, handles, typed constraints
//! and free words out, or a `SyntaxError` naming the offending word and its offset.
//!
//! Pure Rust, no pyo3. Works on `char`s only (offsets count Unicode code points, never bytes), so no
//! input can make it slice a `str` off a character boundary or panic. Its Unicode facts come from
//! `intent_tables.rs`, generated from one pinned Unicode version and shared with the Python reference
//! (`node/reference/intent.py`), which must agree with this module on every input.

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

const GEOHASH_ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// Currencies whose minor unit is not 2 decimal digits (ISO 4217); every other code has 2.
const MINOR_DIGITS: &[(&str, u32)] = &[
    ("BHD", 3),
    ("BIF", 0),
    ("CLF", 4),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("IQD", 3),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("PYG", 0),
    ("RWF", 0),
    ("TND", 3),
    ("UGX", 0),
    ("UYI", 0),
    ("UYW", 4),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
];

/// The decimal digits of a currency's minor unit (2 unless listed).
pub fn minor_digits(currency: &str) -> u32 {
    MINOR_DIGITS
        .binary_search_by(|(code, _)| code.cmp(&currency))
        .map(|i| MINOR_DIGITS[i].1)
        .unwrap_or(2)
}

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

// -- character classes ---------------------------------------------------------------------------

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

/// One of LEADING_PUNCTUATION.
pub fn is_leading(c: char) -> bool {
    LEADING_PUNCTUATION.contains(c)
}

/// One of TRAILING_PUNCTUATION.
pub fn is_trailing(c: char) -> bool {
    TRAILING_PUNCTUATION.contains(c)
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

/// A key whose value is typed (money, date, integer, geohash, place): `max:` with no value is an error.
fn is_typed_key(key: &str) -> bool {
    matches!(
        key,
        "max" | "min" | "budget" | "before" | "after" | "on" | "qty" | "size" | "nights" | "seats"
            | "guests" | "near" | "from" | "to"
    )
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

// -- the tokenizer -------------------------------------------------------------------------------
//
// Words and values are sub-slices of the text cut only at positions that `char_indices`, `find`
// or an ASCII byte gave, so always on character boundaries; `get` is used anyway, so a mistake
// would give an empty slice rather than a panic.

fn sub(s: &str, from: usize, to: usize) -> &str {
    s.get(from..to).unwrap_or("")
}

fn tail(s: &str, from: usize) -> &str {
    s.get(from..).unwrap_or("")
}

/// The byte index of the first `a` followed by `b` (both ASCII, so the index is a boundary).
fn find2(s: &str, a: u8, b: u8) -> Option<usize> {
    s.as_bytes().windows(2).position(|w| w[0] == a && w[1] == b)
}

/// A word after stripping punctuation, and the character offset of its first character.
#[derive(Clone, Copy)]
struct Word<'a> {
    text: &'a str,
    offset: usize,
    /// The first stripped trailing character was `:` (as in `max:`).
    colon_after: bool,
}

impl Word<'_> {
    fn err(&self, message: impl Into<String>) -> SyntaxError {
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
fn for_each_word<'a>(
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

/// The lower-cased name of a `?token`, `#tag` or `@handle` word (its sigil is one ASCII byte).
fn name(word: Word<'_>, sigil: char) -> Result<String, SyntaxError> {
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

/// A place code, upper-cased: 2 to 8 ASCII letters or digits.
fn place(s: &str) -> Option<String> {
    if (2..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Some(s.to_ascii_uppercase())
    } else {
        None
    }
}

/// `X->Y` with both sides place codes (split at the first `->`).
fn route(s: &str) -> Option<(String, String)> {
    let at = find2(s, b'-', b'>')?;
    Some((place(sub(s, 0, at))?, place(tail(s, at + 2))?))
}

/// `key:value` with key `[a-z][a-z0-9_]*` (split at the first `:`) and a non-empty value.
fn key_value(s: &str) -> Option<(&str, &str)> {
    let at = s.bytes().position(|b| b == b':')?;
    let (key, value) = (sub(s, 0, at), tail(s, at + 1));
    let first_ok = key.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    let rest_ok = key
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    (first_ok && rest_ok && !value.is_empty()).then_some((key, value))
}

/// Splits `a..b` at the first `..`.
fn split_range(s: &str) -> Option<(&str, &str)> {
    let at = find2(s, b'.', b'.')?;
    Some((sub(s, 0, at), tail(s, at + 2)))
}

fn typed<'a>(key: &str, value: &'a str) -> Result<Constraint<'a>, String> {
    match key {
        "max" | "min" | "budget" => money(key, value),
        "before" | "after" | "on" => date_or_range(key, value),
        "qty" | "size" | "nights" | "seats" | "guests" => int_or_range(key, value),
        "near" => geohash(key, value),
        "from" | "to" => place(value).map(Constraint::Place).ok_or_else(|| {
            format!("{key}: expected a place code of 2 to 8 letters or digits, such as SFO")
        }),
        _ => Ok(Constraint::Text(value)),
    }
}

fn out_of_order(key: &str) -> String {
    format!("{key}: the ends of the range are out of order")
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The value of ASCII digits (callers check them; saturates rather than overflows).
fn digits_value(s: &str) -> u64 {
    s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10)
            .saturating_add(u64::from(b.wrapping_sub(b'0')))
    })
}

// -- integers --

fn int(key: &str, s: &str) -> Result<u64, String> {
    if !all_digits(s) {
        return Err(format!(
            "{key}: expected a whole number such as 3, or a range such as 2..4"
        ));
    }
    if s.len() > MAX_INT_DIGITS {
        return Err(format!("{key}: number too large"));
    }
    Ok(digits_value(s))
}

fn int_or_range<'a>(key: &str, value: &'a str) -> Result<Constraint<'a>, String> {
    match split_range(value) {
        None => Ok(Constraint::Int(int(key, value)?)),
        Some((lo, hi)) => {
            let (lo, hi) = (int(key, lo)?, int(key, hi)?);
            if lo > hi {
                return Err(out_of_order(key));
            }
            Ok(Constraint::IntRange(lo, hi))
        }
    }
}

// -- dates --

fn is_leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn date<'a>(key: &str, s: &'a str) -> Result<&'a str, String> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape_ok {
        return Err(format!("{key}: expected a date such as 2026-12-20"));
    }
    let (year, month, day) = (
        digits_value(sub(s, 0, 4)),
        digits_value(sub(s, 5, 7)),
        digits_value(sub(s, 8, 10)),
    );
    if year == 0 || day == 0 || day > days_in_month(year, month) {
        return Err(format!("{key}: not a calendar date"));
    }
    Ok(s)
}

fn date_or_range<'a>(key: &str, value: &'a str) -> Result<Constraint<'a>, String> {
    match split_range(value) {
        None => Ok(Constraint::Date(date(key, value)?)),
        Some((lo, hi)) => {
            let (lo, hi) = (date(key, lo)?, date(key, hi)?);
            if lo > hi {
                return Err(out_of_order(key));
            }
            Ok(Constraint::DateRange(lo, hi))
        }
    }
}

// -- money --

/// `digits[.digits][CUR]`: the integer digits, the fraction digits ("" without a point) and the
/// currency, upper-cased (None when absent).
struct Amount<'a> {
    units: &'a str,
    fraction: &'a str,
    currency: Option<String>,
}

fn leading_digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// None when the shape is wrong.
fn amount(s: &str) -> Option<Amount<'_>> {
    let n = leading_digits(s);
    if n == 0 {
        return None;
    }
    let units = sub(s, 0, n);
    let mut rest = tail(s, n);
    let mut fraction = "";
    if let Some(after_point) = rest.strip_prefix('.') {
        let f = leading_digits(after_point);
        if f == 0 {
            return None;
        }
        fraction = sub(after_point, 0, f);
        rest = tail(after_point, f);
    }
    let currency = match rest.len() {
        0 => None,
        3 if rest.bytes().all(|b| b.is_ascii_alphabetic()) => Some(rest.to_ascii_uppercase()),
        _ => return None,
    };
    Some(Amount {
        units,
        fraction,
        currency,
    })
}

fn minor_units(key: &str, a: &Amount<'_>, cur: &str) -> Result<u64, String> {
    let digits = minor_digits(cur) as usize;
    if a.units.len() + digits > MAX_INT_DIGITS {
        return Err(format!("{key}: amount too large"));
    }
    if a.fraction.len() > digits {
        return Err(format!(
            "{key}: {cur} allows at most {digits} decimal digits"
        ));
    }
    let fraction = a.fraction.as_bytes();
    let mut minor = digits_value(a.units);
    for i in 0..digits {
        let d = fraction
            .get(i)
            .map_or(0, |b| u64::from(b.wrapping_sub(b'0')));
        minor = minor.saturating_mul(10).saturating_add(d);
    }
    Ok(minor)
}

fn money<'a>(key: &str, value: &'a str) -> Result<Constraint<'a>, String> {
    let bad = || format!("{key}: expected an amount with its currency, such as 400USD or 12.50EUR");
    match split_range(value) {
        None => {
            let a = amount(value).ok_or_else(bad)?;
            let cur = a.currency.clone().ok_or_else(bad)?;
            let minor = minor_units(key, &a, &cur)?;
            Ok(Constraint::Money { minor, cur })
        }
        Some((lo, hi)) => {
            let (lo, hi) = (amount(lo).ok_or_else(bad)?, amount(hi).ok_or_else(bad)?);
            let cur = hi.currency.clone().ok_or_else(bad)?;
            if lo.currency.as_ref().is_some_and(|c| *c != cur) {
                return Err(format!(
                    "{key}: the ends of the range are in different currencies"
                ));
            }
            let (lo, hi) = (minor_units(key, &lo, &cur)?, minor_units(key, &hi, &cur)?);
            if lo > hi {
                return Err(out_of_order(key));
            }
            Ok(Constraint::MoneyRange { lo, hi, cur })
        }
    }
}

// -- geohash --

fn geohash<'a>(key: &str, value: &'a str) -> Result<Constraint<'a>, String> {
    let lowered = value.to_ascii_lowercase();
    if (1..=12).contains(&value.len()) && lowered.bytes().all(|b| GEOHASH_ALPHABET.contains(&b)) {
        Ok(Constraint::Geohash(lowered))
    } else {
        Err(format!(
            "{key}: expected a geohash of 1 to 12 characters from 0-9 and b-z except i, l, o"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Intent<'_> {
        parse(text).unwrap_or_else(|e| panic!("{text:?} refused: {e}"))
    }

    fn err(text: &str) -> SyntaxError {
        parse(text).expect_err("should be refused")
    }

    fn c<'a>(text: &'a str, key: &str) -> Constraint<'a> {
        ok(text).constraint(key).cloned().expect("constraint")
    }

    #[test]
    fn the_example_of_the_brief() {
        let i = ok("?flight SFO->JFK before:2026-12-20 max:400USD #travel @acme-air window seat");
        assert_eq!(i.tokens, ["flight"]);
        assert_eq!(i.tags, ["travel"]);
        assert_eq!(i.handles, ["acme-air"]);
        assert_eq!(i.words, ["window", "seat"]);
        assert_eq!(
            i.constraints,
            vec![
                ("from", Constraint::Place("SFO".into())),
                ("to", Constraint::Place("JFK".into())),
                ("before", Constraint::Date("2026-12-20")),
                (
                    "max",
                    Constraint::Money {
                        minor: 40000,
                        cur: "USD".into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn names_are_unicode_lower_cased_and_deduplicated() {
        let i = ok("?Café ?ПОЕЗД #日本 ?café ?поезд #日本 @Shop.Example İ ?İx");
        assert_eq!(i.tokens, ["café", "поезд", "i\u{307}x"]);
        assert_eq!(i.tags, ["日本"]);
        assert_eq!(i.handles, ["shop.example"]);
        // no final-sigma context: every capital sigma becomes σ
        assert_eq!(ok("?ΟΔΟΣ").tokens, ["οδοσ"]);
        // combining marks belong to names
        assert_eq!(ok("?cafe\u{301}").tokens, ["cafe\u{301}"]);
    }

    #[test]
    fn punctuation_around_words_is_stripped() {
        let i = ok("(?flight), “#travel” «@acme»! ¿?taxi? [note:x]. ...");
        assert_eq!(i.tokens, ["flight", "taxi"]);
        assert_eq!(i.tags, ["travel"]);
        assert_eq!(i.handles, ["acme"]);
        assert_eq!(i.constraint("note"), Some(&Constraint::Text("x")));
        assert!(i.words.is_empty());
        assert_eq!(ok("?a wanted: it").words, ["wanted", "it"]);
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        let e = err("日本語 ?fl*ght");
        assert_eq!((e.word.as_str(), e.offset), ("?fl*ght", 4));
        assert_eq!(e.message, "invalid character '*' (U+002A) in a name");
        let e = err("é (#a§b)");
        assert_eq!((e.word.as_str(), e.offset), ("#a§b", 3));
        assert_eq!(e.message, "invalid character U+00A7 in a name");
    }

    #[test]
    fn whole_text_errors() {
        assert_eq!(err("").message, MSG_EMPTY);
        assert_eq!(err(" \t\n\u{3000}\u{a0}").message, MSG_EMPTY);
        assert_eq!(err("... !!").message, MSG_NO_TOKEN);
        assert_eq!(err("just words").message, MSG_NO_TOKEN);
        assert_eq!(err("?").message, MSG_NO_TOKEN);
        let e = err(&"?x".repeat(501));
        assert_eq!(
            (e.message, e.word, e.offset),
            (msg_too_long(), String::new(), 0)
        );
        ok(&format!("?x{}", " ".repeat(998)));
        ok(&format!("?{}", "é".repeat(64)));
        assert_eq!(
            err(&format!("?{}", "é".repeat(65))).message,
            "name longer than 64 characters"
        );
    }

    #[test]
    fn name_errors() {
        assert_eq!(err("?a #").message, "empty name after '#'");
        assert_eq!(err("?a @").word, "@");
        assert_eq!(
            err("??a").message,
            "invalid character '?' (U+003F) in a name"
        );
        assert_eq!(
            err("?a.b").message,
            "invalid character '.' (U+002E) in a name"
        );
        assert_eq!(ok("?a @a.b_c-d").handles, ["a.b_c-d"]);
    }

    #[test]
    fn money() {
        let m = |minor, cur: &str| Constraint::Money {
            minor,
            cur: cur.into(),
        };
        assert_eq!(c("?a max:400USD", "max"), m(40000, "USD"));
        assert_eq!(c("?a max:12.5eur", "max"), m(1250, "EUR"));
        assert_eq!(c("?a max:12.05EUR", "max"), m(1205, "EUR"));
        assert_eq!(c("?a max:5000JPY", "max"), m(5000, "JPY"));
        assert_eq!(c("?a max:1.234KWD", "max"), m(1234, "KWD"));
        assert_eq!(c("?a max:3CHF", "max"), m(300, "CHF"));
        assert_eq!(
            c("?a budget:100..250.5USD", "budget"),
            Constraint::MoneyRange {
                lo: 10000,
                hi: 25050,
                cur: "USD".into()
            }
        );
        assert_eq!(
            c("?a budget:100USD..250USD", "budget"),
            Constraint::MoneyRange {
                lo: 10000,
                hi: 25000,
                cur: "USD".into()
            }
        );
        assert_eq!(
            c(&format!("?a max:{}USD", "9".repeat(15)), "max"),
            m(99_999_999_999_999_900, "USD")
        );
        for (bad, message) in [
            (
                "max:400",
                "max: expected an amount with its currency, such as 400USD or 12.50EUR",
            ),
            (
                "max:USD",
                "max: expected an amount with its currency, such as 400USD or 12.50EUR",
            ),
            (
                "max:4.USD",
                "max: expected an amount with its currency, such as 400USD or 12.50EUR",
            ),
            (
                "max:4US",
                "max: expected an amount with its currency, such as 400USD or 12.50EUR",
            ),
            (
                "max:4€",
                "max: expected an amount with its currency, such as 400USD or 12.50EUR",
            ),
            ("max:1.5JPY", "max: JPY allows at most 0 decimal digits"),
            ("max:1.505USD", "max: USD allows at most 2 decimal digits"),
            ("max:10000000000000000USD", "max: amount too large"),
            ("max:1000000000000000000JPY", "max: amount too large"),
            (
                "min:5USD..4USD",
                "min: the ends of the range are out of order",
            ),
            (
                "min:5EUR..6USD",
                "min: the ends of the range are in different currencies",
            ),
            (
                "min:5USD..6",
                "min: expected an amount with its currency, such as 400USD or 12.50EUR",
            ),
        ] {
            let e = err(&format!("?a {bad}"));
            assert_eq!(
                (e.message.as_str(), e.word.as_str(), e.offset),
                (message, bad, 3),
                "{bad}"
            );
        }
    }

    #[test]
    fn dates() {
        assert_eq!(c("?a on:2024-02-29", "on"), Constraint::Date("2024-02-29"));
        assert_eq!(c("?a on:2000-02-29", "on"), Constraint::Date("2000-02-29"));
        assert_eq!(
            c("?a on:2026-12-20..2026-12-24", "on"),
            Constraint::DateRange("2026-12-20", "2026-12-24")
        );
        for bad in [
            "2023-02-29",
            "1900-02-29",
            "2026-04-31",
            "2026-13-01",
            "2026-00-10",
            "0000-01-01",
            "2026-01-00",
        ] {
            assert_eq!(
                err(&format!("?a after:{bad}")).message,
                "after: not a calendar date",
                "{bad}"
            );
        }
        for bad in [
            "2026-1-01",
            "26-01-01",
            "2026/01/01",
            "2026-01-011",
            "２０２６-01-01",
        ] {
            assert_eq!(
                err(&format!("?a after:{bad}")).message,
                "after: expected a date such as 2026-12-20"
            );
        }
        assert_eq!(
            err("?a on:2026-12-24..2026-12-20").message,
            "on: the ends of the range are out of order"
        );
    }

    #[test]
    fn integers_geohash_places_text() {
        assert_eq!(c("?a qty:3", "qty"), Constraint::Int(3));
        assert_eq!(c("?a nights:2..4", "nights"), Constraint::IntRange(2, 4));
        assert_eq!(c("?a guests:007", "guests"), Constraint::Int(7));
        assert_eq!(
            err("?a seats:4..2").message,
            "seats: the ends of the range are out of order"
        );
        assert_eq!(
            err("?a size:M").message,
            "size: expected a whole number such as 3, or a range such as 2..4"
        );
        assert_eq!(
            err("?a qty:-1").message,
            "qty: expected a whole number such as 3, or a range such as 2..4"
        );
        assert_eq!(
            err(&format!("?a qty:{}", "1".repeat(19))).message,
            "qty: number too large"
        );
        assert_eq!(
            c("?a near:9Q8YY", "near"),
            Constraint::Geohash("9q8yy".into())
        );
        for bad in ["9q8ya", "", "0123456789bcd", "9q8y!x"] {
            if bad.is_empty() {
                continue;
            }
            assert!(err(&format!("?a near:{bad}"))
                .message
                .starts_with("near: expected a geohash"));
        }
        assert_eq!(c("?a from:sfo", "from"), Constraint::Place("SFO".into()));
        assert!(err("?a to:J")
            .message
            .starts_with("to: expected a place code"));
        assert_eq!(
            c("?a color:Red..Blue", "color"),
            Constraint::Text("Red..Blue")
        );
        assert_eq!(
            c("?a https://x.example/a:b", "https"),
            Constraint::Text("//x.example/a:b")
        );
        // not constraints: upper-case or non-ASCII keys, leading digits, times
        assert_eq!(
            ok("?a Max:1 10:30 é:x 1a:b").words,
            ["Max:1", "10:30", "é:x", "1a:b"]
        );
    }

    #[test]
    fn routes_and_repeated_keys() {
        let i = ok("?flight lax->nrt");
        assert_eq!(i.constraint("from"), Some(&Constraint::Place("LAX".into())));
        assert_eq!(i.constraint("to"), Some(&Constraint::Place("NRT".into())));
        assert_eq!(ok("?a A->B x->").words, ["A->B", "x-"]);
        let e = err("?a from:SFO SFO->JFK");
        assert_eq!(
            (e.message.as_str(), e.word.as_str(), e.offset),
            ("constraint 'from' given twice", "SFO->JFK", 12)
        );
        let e = err("?a max:1USD x max:2USD");
        assert_eq!(
            (e.message.as_str(), e.offset),
            ("constraint 'max' given twice", 14)
        );
    }

    #[test]
    fn cjk_and_full_width_marks_are_punctuation() {
        for c in ['「', '『', '（', '【', '《'] {
            assert!(is_leading(c), "{c:?}");
        }
        for c in ['。', '、', '！', '？', '」', '』', '）', '，', '．', '：', '؟', '،', '।'] {
            assert!(is_trailing(c), "{c:?}");
            assert!(!is_name_char(c), "{c:?}");
        }
        assert_eq!(ok("?寿司 #東京。").tags, ["東京"]);
        assert_eq!(ok("「?寿司」、 #大阪！").tokens, ["寿司"]);
    }

    #[test]
    fn joiners_and_middle_dots_follow_uax31() {
        // Persian ZWNJ between joining letters; Devanagari ZWJ/ZWNJ after a virama; Catalan l·l
        assert_eq!(ok("?x #می\u{200C}خواهم").tags, ["می\u{200C}خواهم"]);
        assert_eq!(ok("?x #क्\u{200D}ष").tags, ["क्\u{200D}ष"]);
        assert_eq!(ok("?x #क्\u{200C}ष").tags, ["क्\u{200C}ष"]);
        assert_eq!(ok("?col\u{B7}lecció").tokens, ["col\u{B7}lecció"]);
        assert_eq!(ok("?İ\u{B7}l").tokens, ["i\u{307}\u{B7}l"]);
        for bad in ["?a\u{200C}b", "?a\u{200D}b", "?\u{200C}", "?\u{B7}l", "?l\u{B7}", "?l\u{B7}\u{B7}l", "?ا\u{200C}ب"] {
            let e = err(bad);
            assert!(e.message.contains("in a name only"), "{bad:?}: {e}");
            assert_eq!(e.offset, 0);
        }
    }

    #[test]
    fn a_typed_key_without_value_is_refused() {
        let e = err("?flight max:");
        assert_eq!((e.word.as_str(), e.offset), ("max", 8));
        assert_eq!(e.message, err("?flight max:lots").message);
        assert!(err("?x before:.").message.starts_with("before: expected a date"));
        assert!(err("?x (qty:)").message.starts_with("qty: expected a whole number"));
        assert_eq!(ok("?help needed: a plumber").words, ["needed", "a", "plumber"]);
        assert_eq!(ok("?x max").words, ["max"]);
    }

    #[test]
    fn minor_digit_table_is_sorted() {
        assert!(MINOR_DIGITS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(tables::NAME_RANGES.windows(2).all(|w| w[0].1 < w[1].0));
        assert!(tables::LOWER.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn no_panic_on_odd_input() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let alphabet: Vec<char> = "?#@:.->..()\"' \tabcXYZ0129é日Σİ\u{301}\u{0}\u{10FFFF}\u{FFFD}"
            .chars()
            .collect();
        for _ in 0..20_000 {
            let mut s = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            for k in 0..len {
                let r = seed.rotate_left(k as u32 * 5) as usize;
                s.push(alphabet[r % alphabet.len()]);
            }
            let _ = parse(&s);
        }
    }
}
