//! The items of a pushed gossip batch (`POST /v1/gossip`, PROTOCOL.md section 7): a MessagePack
//! array of `[ttl, envelope]` pairs, each ttl an unsigned integer and each envelope a byte string.
//! `scan` finds every item's ttl and envelope bytes in one pass, building no value per item; it
//! accepts exactly the bodies the reference decoder (`federation.wire.decode_batch`) accepts, in
//! any of MessagePack's encodings of those types, and answers `None` for anything else, so that
//! the caller's reference decoder can say what is wrong with it. It never panics: every read is
//! bounds-checked.

/// Each item's ttl (clamped to the caller's maximum) and where its envelope lies in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    pub ttls: Vec<u8>,
    pub spans: Vec<(usize, usize)>,
}

/// The batch in `body`, or `None` when it is not an array of at most `max_items` well-formed
/// items with nothing after it.
pub fn scan(body: &[u8], max_items: usize, max_ttl: u8) -> Option<Scanned> {
    let mut r = Cursor { data: body, at: 0 };
    let n = r.array_len()?;
    if n > max_items {
        return None;
    }
    // An item takes at least 4 bytes: a count the body cannot hold reserves no more than it can.
    let room = n.min(body.len() / 4);
    let mut out = Scanned {
        ttls: Vec::with_capacity(room),
        spans: Vec::with_capacity(room),
    };
    for _ in 0..n {
        if r.array_len()? != 2 {
            return None;
        }
        let ttl = r.uint()?;
        out.ttls.push(ttl.min(u64::from(max_ttl)) as u8);
        out.spans.push(r.bin()?);
    }
    (r.at == body.len()).then_some(out)
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// A big-endian unsigned integer of `width` bytes.
    fn be(&mut self, width: usize) -> Option<u64> {
        let end = self.at.checked_add(width)?;
        let bytes = self.data.get(self.at..end)?;
        self.at = end;
        Some(bytes.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)))
    }

    fn array_len(&mut self) -> Option<usize> {
        let len = match self.byte()? {
            b @ 0x90..=0x9f => u64::from(b & 0x0f),
            0xdc => self.be(2)?,
            0xdd => self.be(4)?,
            _ => return None,
        };
        usize::try_from(len).ok()
    }

    /// A non-negative integer in any encoding (a signed one holding a value >= 0 included, as the
    /// reference decoder reads it as that int).
    fn uint(&mut self) -> Option<u64> {
        let signed = |v: u64, bits: u32| (v >> (bits - 1) == 0).then_some(v);
        match self.byte()? {
            b @ 0x00..=0x7f => Some(u64::from(b)),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            0xd0 => signed(self.be(1)?, 8),
            0xd1 => signed(self.be(2)?, 16),
            0xd2 => signed(self.be(4)?, 32),
            0xd3 => signed(self.be(8)?, 64),
            _ => None,
        }
    }

    fn bin(&mut self) -> Option<(usize, usize)> {
        let len = match self.byte()? {
            0xc4 => self.be(1)?,
            0xc5 => self.be(2)?,
            0xc6 => self.be(4)?,
            _ => return None,
        };
        let start = self.at;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        if end > self.data.len() {
            return None;
        }
        self.at = end;
        Some((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(ttl: &[u8], env: &[u8]) -> Vec<u8> {
        let mut v = vec![0x92];
        v.extend_from_slice(ttl);
        v.push(0xc4);
        v.push(env.len() as u8);
        v.extend_from_slice(env);
        v
    }

    #[test]
    fn every_encoding_of_the_types_is_read() {
        let mut body = vec![0xdc, 0, 4];
        body.extend(item(&[3], b"ab"));
        body.extend(item(&[0xcf, 0, 0, 0, 0, 0, 0, 1, 0], b""));
        body.extend(item(&[0xd0, 5], b"c"));
        body.extend([0xdd, 0, 0, 0, 2, 0xcd, 0, 7, 0xc5, 0, 1, b'z']);
        let s = scan(&body, 1000, 8).unwrap();
        assert_eq!(s.ttls, vec![3, 8, 5, 7]);
        let envs: Vec<&[u8]> = s.spans.iter().map(|&(a, b)| &body[a..b]).collect();
        assert_eq!(envs, vec![&b"ab"[..], b"", b"c", b"z"]);
    }

    #[test]
    fn anything_else_is_none() {
        let good = [vec![0x91], item(&[1], b"x")].concat();
        assert!(scan(&good, 1000, 8).is_some());
        assert!(scan(&good, 0, 8).is_none()); // over max_items
        assert!(scan(&[good.clone(), vec![0]].concat(), 1000, 8).is_none()); // trailing
        for cut in 0..good.len() {
            assert!(scan(&good[..cut], 1000, 8).is_none());
        }
        let negative = [vec![0x91], item(&[0xd0, 0xff], b"x")].concat();
        assert!(scan(&negative, 1000, 8).is_none());
        let fixneg = [vec![0x91], item(&[0xff], b"x")].concat();
        assert!(scan(&fixneg, 1000, 8).is_none());
        let boolean = [vec![0x91], item(&[0xc3], b"x")].concat();
        assert!(scan(&boolean, 1000, 8).is_none());
        let text = [0x91, 0x92, 1, 0xa1, b'x'];
        assert!(scan(&text, 1000, 8).is_none());
        let huge = [0x91, 0x92, 1, 0xc6, 0xff, 0xff, 0xff, 0xff];
        assert!(scan(&huge, 1000, 8).is_none());
        // a count the body cannot hold reserves nothing and is refused
        assert!(scan(&[0xdd, 0xff, 0xff, 0xff, 0xff], usize::MAX, 8).is_none());
    }
}
