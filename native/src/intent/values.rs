//! The typed values of `key:value` constraints (PROTOCOL.md section 5): money in minor units of its
//! currency, calendar dates, whole numbers, geohashes and place codes, single or as `lo..hi` ranges.
//! Errors are the message alone; the caller names the word.

use super::words::{find2, sub, tail};
use super::{Constraint, MAX_INT_DIGITS};

const GEOHASH_ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// Currencies whose minor unit is not 2 decimal digits (ISO 4217); every other code has 2.
pub(super) const MINOR_DIGITS: &[(&str, u32)] = &[
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

/// A key whose value is typed (money, date, integer, geohash, place): `max:` with no value is an error.
pub(super) fn is_typed_key(key: &str) -> bool {
    matches!(
        key,
        "max"
            | "min"
            | "budget"
            | "before"
            | "after"
            | "on"
            | "qty"
            | "size"
            | "nights"
            | "seats"
            | "guests"
            | "near"
            | "from"
            | "to"
    )
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
pub(super) fn route(s: &str) -> Option<(String, String)> {
    let at = find2(s, b'-', b'>')?;
    Some((place(sub(s, 0, at))?, place(tail(s, at + 2))?))
}

/// `key:value` with key `[a-z][a-z0-9_]*` (split at the first `:`) and a non-empty value.
pub(super) fn key_value(s: &str) -> Option<(&str, &str)> {
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

pub(super) fn typed<'a>(key: &str, value: &'a str) -> Result<Constraint<'a>, String> {
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
