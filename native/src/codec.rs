//! Canonical MessagePack subset (PROTOCOL.md section 1): strict decoding and canonical encoding.
//!
//! Decoding is one left-to-right pass and the first problem met decides the reason, in the order
//! PROTOCOL.md gives. Nothing here trusts a length taken from the input: every read is a checked
//! slice of the remaining bytes, and no buffer is ever sized from a claimed count.

use crate::reason::{Error, Reason, Result};

/// Nesting limit: the outermost value is at depth 1; a container at depth 16 may hold only scalars.
pub const MAX_DEPTH: usize = 16;
/// Size cap of an envelope (and of `decode`'s input).
pub const MAX_ENVELOPE_BYTES: usize = 65_536;

/// A canonical value. `NInt` always holds a negative number; `UInt` every non-negative one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Nil,
    Bool(bool),
    UInt(u64),
    NInt(i64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Value>),
    /// Entries in any order; `encode` sorts them by the UTF-8 bytes of the key.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// An integer in canonical form (`UInt` if non-negative, else `NInt`).
    pub fn int(v: i64) -> Value {
        match u64::try_from(v) {
            Ok(u) => Value::UInt(u),
            Err(_) => Value::NInt(v),
        }
    }
}

/// One decoded item header. Containers carry their entry count; their children follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head<'a> {
    Nil,
    Bool(bool),
    UInt(u64),
    NInt(i64),
    Str(&'a str),
    Bin(&'a [u8]),
    Array(u32),
    Map(u32),
}

/// A strict reader over the input bytes.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

const TRUNCATED: &str = "unexpected end of input";

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    #[inline]
    fn byte(&mut self) -> Result<u8> {
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(Error::at(Reason::Malformed, TRUNCATED, self.pos)),
        }
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let slice = self
            .pos
            .checked_add(n)
            .and_then(|end| self.data.get(self.pos..end))
            .ok_or(Error::at(Reason::Malformed, TRUNCATED, self.pos))?;
        self.pos += n;
        Ok(slice)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    #[inline]
    fn u8(&mut self) -> Result<u8> {
        self.byte()
    }
    #[inline]
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array::<2>()?))
    }
    #[inline]
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array::<4>()?))
    }
    #[inline]
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array::<8>()?))
    }

    /// A length (`u32` on the wire) as `usize`.
    #[inline]
    fn len_of(&self, n: u32) -> Result<usize> {
        usize::try_from(n).map_err(|_| Error::at(Reason::Malformed, "length too large", self.pos))
    }

    fn text(&mut self, len: u32) -> Result<&'a str> {
        let at = self.pos;
        let n = self.len_of(len)?;
        let bytes = self.take(n)?;
        core::str::from_utf8(bytes)
            .map_err(|_| Error::at(Reason::Malformed, "invalid UTF-8 in text", at))
    }

    fn bytes(&mut self, len: u32) -> Result<&'a [u8]> {
        let n = self.len_of(len)?;
        self.take(n)
    }

    /// Reads one item header at nesting `depth` (outermost value = 1), in PROTOCOL.md's order:
    /// type byte (end, forbidden types, floats, container depth), then integer/length (end, shortest
    /// form), then text/bytes content (end, UTF-8).
    pub fn head(&mut self, depth: usize) -> Result<Head<'a>> {
        let start = self.pos;
        let t = self.byte()?;
        let non_canonical = |what| Err(Error::at(Reason::NonCanonical, what, start));
        let deep = depth > MAX_DEPTH;
        let too_deep = Err(Error::at(Reason::TooDeep, "nesting deeper than 16", start));
        match t {
            0x00..=0x7f => Ok(Head::UInt(u64::from(t))),
            0x80..=0x8f => {
                if deep {
                    return too_deep;
                }
                Ok(Head::Map(u32::from(t & 0x0f)))
            }
            0x90..=0x9f => {
                if deep {
                    return too_deep;
                }
                Ok(Head::Array(u32::from(t & 0x0f)))
            }
            0xa0..=0xbf => Ok(Head::Str(self.text(u32::from(t & 0x1f))?)),
            0xc0 => Ok(Head::Nil),
            0xc2 => Ok(Head::Bool(false)),
            0xc3 => Ok(Head::Bool(true)),
            0xc1 => Err(Error::at(
                Reason::Malformed,
                "reserved type byte 0xc1",
                start,
            )),
            0xc7..=0xc9 | 0xd4..=0xd8 => Err(Error::at(Reason::Malformed, "extension type", start)),
            0xca | 0xcb => Err(Error::at(Reason::FloatForbidden, "float", start)),
            0xc4 => {
                let n = self.u8()?;
                Ok(Head::Bin(self.bytes(u32::from(n))?))
            }
            0xc5 => {
                let n = self.u16()?;
                if n < 0x100 {
                    return non_canonical("bytes length not in shortest form");
                }
                Ok(Head::Bin(self.bytes(u32::from(n))?))
            }
            0xc6 => {
                let n = self.u32()?;
                if n < 0x1_0000 {
                    return non_canonical("bytes length not in shortest form");
                }
                Ok(Head::Bin(self.bytes(n)?))
            }
            0xcc => {
                let v = self.u8()?;
                if v < 0x80 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::UInt(u64::from(v)))
            }
            0xcd => {
                let v = self.u16()?;
                if v < 0x100 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::UInt(u64::from(v)))
            }
            0xce => {
                let v = self.u32()?;
                if v < 0x1_0000 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::UInt(u64::from(v)))
            }
            0xcf => {
                let v = self.u64()?;
                if v < 0x1_0000_0000 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::UInt(v))
            }
            0xd0 => {
                let v = i64::from(self.u8()? as i8);
                if v >= -32 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::NInt(v))
            }
            0xd1 => {
                let v = i64::from(self.u16()? as i16);
                if v >= -128 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::NInt(v))
            }
            0xd2 => {
                let v = i64::from(self.u32()? as i32);
                if v >= -32_768 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::NInt(v))
            }
            0xd3 => {
                let v = self.u64()? as i64;
                if v >= -2_147_483_648 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::NInt(v))
            }
            0xd9 => {
                let n = self.u8()?;
                if n < 32 {
                    return non_canonical("text length not in shortest form");
                }
                Ok(Head::Str(self.text(u32::from(n))?))
            }
            0xda => {
                let n = self.u16()?;
                if n < 0x100 {
                    return non_canonical("text length not in shortest form");
                }
                Ok(Head::Str(self.text(u32::from(n))?))
            }
            0xdb => {
                let n = self.u32()?;
                if n < 0x1_0000 {
                    return non_canonical("text length not in shortest form");
                }
                Ok(Head::Str(self.text(n)?))
            }
            0xdc | 0xde => {
                if deep {
                    return too_deep;
                }
                let n = self.u16()?;
                if n < 16 {
                    return non_canonical("container length not in shortest form");
                }
                Ok(if t == 0xdc {
                    Head::Array(u32::from(n))
                } else {
                    Head::Map(u32::from(n))
                })
            }
            0xdd | 0xdf => {
                if deep {
                    return too_deep;
                }
                let n = self.u32()?;
                if n < 0x1_0000 {
                    return non_canonical("container length not in shortest form");
                }
                Ok(if t == 0xdd {
                    Head::Array(n)
                } else {
                    Head::Map(n)
                })
            }
            0xe0..=0xff => Ok(Head::NInt(i64::from(t as i8))),
        }
    }

    /// Skips (validating) the children of an item whose header was just read at `depth`.
    pub fn skip_children(&mut self, head: Head<'a>, depth: usize) -> Result<()> {
        match head {
            Head::Array(n) => {
                for _ in 0..n {
                    self.skip_value(depth + 1)?;
                }
                Ok(())
            }
            Head::Map(n) => {
                let mut prev: Option<&'a str> = None;
                for _ in 0..n {
                    prev = Some(self.key(depth + 1, prev)?);
                    self.skip_value(depth + 1)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Validates one whole value at `depth` without building it.
    pub fn skip_value(&mut self, depth: usize) -> Result<()> {
        let head = self.head(depth)?;
        self.skip_children(head, depth)
    }

    /// Reads a map key at `depth`: decoded as a value first (problems inside it come first), then
    /// not text -> non_canonical, then not greater than `prev` -> non_canonical.
    pub fn key(&mut self, depth: usize, prev: Option<&'a str>) -> Result<&'a str> {
        let start = self.pos;
        let head = self.head(depth)?;
        match head {
            Head::Str(k) => {
                if let Some(p) = prev {
                    if k.as_bytes() <= p.as_bytes() {
                        return Err(Error::at(
                            Reason::NonCanonical,
                            "map keys not in strictly ascending order",
                            start,
                        ));
                    }
                }
                Ok(k)
            }
            other => {
                self.skip_children(other, depth)?;
                Err(Error::at(
                    Reason::NonCanonical,
                    "map key is not text",
                    start,
                ))
            }
        }
    }

    /// Decodes one whole value at `depth` into a `Value`.
    pub fn value(&mut self, depth: usize) -> Result<Value> {
        let head = self.head(depth)?;
        self.build(head, depth)
    }

    /// Builds the `Value` of an item whose header was just read at `depth`.
    pub fn build(&mut self, head: Head<'a>, depth: usize) -> Result<Value> {
        Ok(match head {
            Head::Nil => Value::Nil,
            Head::Bool(b) => Value::Bool(b),
            Head::UInt(v) => Value::UInt(v),
            Head::NInt(v) => Value::NInt(v),
            Head::Str(s) => Value::Str(s.to_owned()),
            Head::Bin(b) => Value::Bin(b.to_vec()),
            Head::Array(n) => {
                // No capacity from the claimed count: grow as items actually decode.
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            Head::Map(n) => {
                let mut entries: Vec<(String, Value)> = Vec::new();
                let mut prev: Option<&'a str> = None;
                for _ in 0..n {
                    let k = self.key(depth + 1, prev)?;
                    prev = Some(k);
                    let v = self.value(depth + 1)?;
                    entries.push((k.to_owned(), v));
                }
                Value::Map(entries)
            }
        })
    }

    /// After the outermost value: any byte left -> trailing_bytes.
    pub fn finish(&self) -> Result<()> {
        if self.pos < self.data.len() {
            Err(Error::at(
                Reason::TrailingBytes,
                "bytes after the value",
                self.pos,
            ))
        } else {
            Ok(())
        }
    }
}

/// The size cap: longer than MAX_ENVELOPE_BYTES -> too_large (checked before anything is read).
pub fn check_size(data: &[u8]) -> Result<()> {
    if data.len() > MAX_ENVELOPE_BYTES {
        Err(Error::new(
            Reason::TooLarge,
            "input longer than 65536 bytes",
        ))
    } else {
        Ok(())
    }
}

/// Strict canonical decode with the size cap (`too_large` first).
pub fn decode(data: &[u8]) -> Result<Value> {
    check_size(data)?;
    decode_uncapped(data)
}

/// Strict canonical decode without the size cap.
pub fn decode_uncapped(data: &[u8]) -> Result<Value> {
    let mut r = Reader::new(data);
    let v = r.value(1)?;
    r.finish()?;
    Ok(v)
}

/// Checks that `data` is one canonical value (size cap included) without building it.
pub fn validate(data: &[u8]) -> Result<()> {
    check_size(data)?;
    let mut r = Reader::new(data);
    r.skip_value(1)?;
    r.finish()
}

// -- encoding ------------------------------------------------------------------------------------

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
