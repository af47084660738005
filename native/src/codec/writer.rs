//! The canonical encoder: every integer and length in its shortest form, map entries sorted by the
//! UTF-8 bytes of their keys.

use super::{Value, MAX_DEPTH};
use crate::reason::{Error, Reason, Result};

/// Canonical encoding of `value`. Map entries are sorted by key bytes; a duplicate key ->
/// non_canonical; a container deeper than 16 -> too_deep. No size cap.
pub fn encode(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Appends the canonical encoding of `value` to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    encode_at(value, out, 1)
}

fn too_long() -> Error {
    Error::new(Reason::TooLarge, "length does not fit the format")
}

/// Writes a uint in its shortest form.
pub fn write_uint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
    } else if v <= 0xff {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v <= 0xffff {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= 0xffff_ffff {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Writes a negative int in its shortest form (`v` must be < 0; a non-negative `v` is written
/// as a uint).
pub fn write_nint(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        write_uint(out, v as u64);
    } else if v >= -32 {
        out.push(v as i8 as u8);
    } else if v >= -128 {
        out.extend_from_slice(&[0xd0, v as i8 as u8]);
    } else if v >= -32_768 {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Writes a text header and the bytes.
pub fn write_str(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        let n32 = u32::try_from(n).map_err(|_| too_long())?;
        out.push(0xdb);
        out.extend_from_slice(&n32.to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Writes a bytes header and the bytes.
pub fn write_bin(out: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    let n = b.len();
    if n <= 0xff {
        out.extend_from_slice(&[0xc4, n as u8]);
    } else if n <= 0xffff {
        out.push(0xc5);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        let n32 = u32::try_from(n).map_err(|_| too_long())?;
        out.push(0xc6);
        out.extend_from_slice(&n32.to_be_bytes());
    }
    out.extend_from_slice(b);
    Ok(())
}

fn write_container(out: &mut Vec<u8>, n: usize, fix: u8, b16: u8, b32: u8) -> Result<()> {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        let n32 = u32::try_from(n).map_err(|_| too_long())?;
        out.push(b32);
        out.extend_from_slice(&n32.to_be_bytes());
    }
    Ok(())
}

/// Writes an array header for `n` items.
pub fn write_array_header(out: &mut Vec<u8>, n: usize) -> Result<()> {
    write_container(out, n, 0x90, 0xdc, 0xdd)
}

/// Writes a map header for `n` entries.
pub fn write_map_header(out: &mut Vec<u8>, n: usize) -> Result<()> {
    write_container(out, n, 0x80, 0xde, 0xdf)
}

fn encode_at(value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<()> {
    match value {
        Value::Nil => out.push(0xc0),
        Value::Bool(false) => out.push(0xc2),
        Value::Bool(true) => out.push(0xc3),
        Value::UInt(v) => write_uint(out, *v),
        Value::NInt(v) => write_nint(out, *v),
        Value::Str(s) => write_str(out, s)?,
        Value::Bin(b) => write_bin(out, b)?,
        Value::Array(items) => {
            if depth > MAX_DEPTH {
                return Err(Error::new(Reason::TooDeep, "nesting deeper than 16"));
            }
            write_array_header(out, items.len())?;
            for item in items {
                encode_at(item, out, depth + 1)?;
            }
        }
        Value::Map(entries) => {
            if depth > MAX_DEPTH {
                return Err(Error::new(Reason::TooDeep, "nesting deeper than 16"));
            }
            write_map_header(out, entries.len())?;
            let sorted = entries
                .windows(2)
                .all(|w| matches!(w, [a, b] if a.0.as_bytes() < b.0.as_bytes()));
            if sorted {
                for (k, v) in entries {
                    write_str(out, k)?;
                    encode_at(v, out, depth + 1)?;
                }
            } else {
                let mut refs: Vec<&(String, Value)> = entries.iter().collect();
                refs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                if refs.windows(2).any(|w| matches!(w, [a, b] if a.0 == b.0)) {
                    return Err(Error::new(Reason::NonCanonical, "duplicate map key"));
                }
                for (k, v) in refs {
                    write_str(out, k)?;
                    encode_at(v, out, depth + 1)?;
                }
            }
        }
    }
    Ok(())
}
