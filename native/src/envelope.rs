//! Envelopes (PROTOCOL.md section 2): field checks in the normative order, signed bytes and ids.
//!
//! Decoding never re-encodes: the input is canonical, so the signed bytes are spliced from it:
//! `SIGNING_PREFIX || 0x86 || <raw entries author..kind> || <raw entry v>`.

use sha2::{Digest, Sha256};

use crate::codec::{self, Head, Reader, Value, MAX_ENVELOPE_BYTES};
use crate::reason::{Error, Reason, Result};

pub const PROTOCOL_VERSION: u64 = 1;
pub const SIGNING_PREFIX: &[u8; 16] = b"vrm-envelope-v1\x00";
pub const MAX_CLOCK_SKEW_MS: u64 = 300_000;
/// Kinds known in version 1, sorted.
pub const KINDS: [&str; 10] = [
    "accept", "decline", "deletion", "grant", "intent", "offer", "receipt", "request", "revoke",
    "withdraw",
];

/// The map header of the signed map (six entries: the envelope less "sig").
const SIGNED_MAP_HEADER: u8 = 0x86;
/// 2^63: `created` and `expires` must be below it.
const TIME_LIMIT: u64 = 1 << 63;

const DAY_MS: u64 = 86_400_000;
/// The longest lifetime (`expires - created`, ms) of each kind, in `KINDS` order (PROTOCOL.md
/// section 2, "Lifetimes"). Each is at least what the node's own signing paths give that kind.
pub const MAX_LIFETIME_MS: [u64; 10] = [
    365 * DAY_MS,      // accept: lives until its offer expires
    365 * DAY_MS,      // decline: likewise
    30 * DAY_MS,       // deletion
    365 * DAY_MS,      // grant: 1 minute .. 365 days
    365 * DAY_MS,      // intent: 1 minute .. 365 days
    365 * DAY_MS,      // offer: at most its intent's remaining life
    10 * 365 * DAY_MS, // receipt: the person's audit trail
    30 * DAY_MS,       // request
    30 * DAY_MS,       // revoke
    365 * DAY_MS,      // withdraw: lives until its intent expires
];

/// The maximum lifetime of a known kind; `None` for an unknown one.
pub fn max_lifetime_ms(kind: &str) -> Option<u64> {
    KINDS
        .binary_search(&kind)
        .ok()
        .and_then(|i| MAX_LIFETIME_MS.get(i).copied())
}

pub fn is_known_kind(kind: &str) -> bool {
    KINDS.binary_search(&kind).is_ok()
}

/// The seven envelope keys in canonical order (slot i holds KEYS[i]); `v` is the last.
const V: usize = 6;
const KEYS: [&str; 7] = ["author", "body", "created", "expires", "kind", "sig", "v"];

#[derive(Clone, Copy)]
struct Slot<'a> {
    /// Offset of the entry (its key) in the input.
    entry_start: usize,
    /// Offset of the value and one past its end.
    value_start: usize,
    value_end: usize,
    head: Head<'a>,
}

/// A decoded, structurally valid envelope borrowing the input.
#[derive(Clone, Copy, Debug)]
pub struct Envelope<'a> {
    pub v: u64,
    pub author: &'a [u8; 32],
    /// The canonical encoding of `body`, as it appears in the input.
    pub body_raw: &'a [u8],
    pub created: u64,
    pub expires: u64,
    pub kind: &'a str,
    pub sig: &'a [u8; 64],
    /// Raw entries `author` .. `kind` (everything between the map header and the "sig" entry).
    signed_head: &'a [u8],
    /// Raw entry `v` (everything after the "sig" entry).
    signed_tail: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// The signed bytes as pieces; their concatenation is the message the signature covers.
    #[inline]
    pub fn signed_parts(&self) -> [&'a [u8]; 4] {
        [
            SIGNING_PREFIX,
            &[SIGNED_MAP_HEADER],
            self.signed_head,
            self.signed_tail,
        ]
    }

    pub fn signed_len(&self) -> usize {
        SIGNING_PREFIX.len() + 1 + self.signed_head.len() + self.signed_tail.len()
    }

    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.signed_len());
        for part in self.signed_parts() {
            out.extend_from_slice(part);
        }
        out
    }

    /// Whether both sign the very same bytes of one buffer (their id is the same).
    pub fn same_signed_bytes(&self, other: &Envelope<'_>) -> bool {
        std::ptr::eq(self.signed_head, other.signed_head)
            && std::ptr::eq(self.signed_tail, other.signed_tail)
    }

    /// SHA-256 of the signed bytes, hashed from the pieces (no copy).
    pub fn id(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in self.signed_parts() {
            h.update(part);
        }
        h.finalize().into()
    }

    /// The body as a `Value` (the raw bytes were validated by `parse`).
    pub fn body(&self) -> Result<Value> {
        let mut r = Reader::new(self.body_raw);
        r.value(2)
    }

    /// The kind's lifetime cap: `expires - created` above it -> too_long_lived (a verification
    /// check, like the clock ones: decoding alone does not refuse it).
    pub fn check_lifetime(&self) -> Result<()> {
        let limit = max_lifetime_ms(self.kind).unwrap_or(0);
        if self.expires.saturating_sub(self.created) > limit {
            return Err(Error::new(
                Reason::TooLongLived,
                "lifetime beyond the kind's maximum",
            ));
        }
        Ok(())
    }

    /// Time checks against `now_ms`: created > now + skew -> not_yet_valid; expires <= now -> expired.
    pub fn check_time(&self, now_ms: i64) -> Result<()> {
        let now = i128::from(now_ms);
        if i128::from(self.created) > now + i128::from(MAX_CLOCK_SKEW_MS) {
            return Err(Error::new(
                Reason::NotYetValid,
                "created too far in the future",
            ));
        }
        if i128::from(self.expires) <= now {
            return Err(Error::new(Reason::Expired, "expired"));
        }
        Ok(())
    }
}

/// The fixed framing of a canonical envelope whose times are uint 64 (every envelope of this
/// millennium): `{"author": bin8(32), "body": .., "created": u64, "expires": u64, "kind": fixstr,
/// "sig": bin8(64), "v": 1}`; the offsets of the first two entries and of the last five from the end.
const AUTHOR_ENTRY: &[u8; 10] = b"\x87\xa6author\xc4\x20";
const BODY_KEY: &[u8; 5] = b"\xa4body";
const CREATED_KEY: &[u8; 9] = b"\xa7created\xcf";
const EXPIRES_KEY: &[u8; 9] = b"\xa7expires\xcf";
const KIND_KEY: &[u8; 5] = b"\xa4kind";
const SIG_ENTRY_HEAD: &[u8; 6] = b"\xa3sig\xc4\x40";
const V_ENTRY: &[u8; 3] = b"\xa1v\x01";
/// The sig entry (70 bytes) and the v entry (3) close every canonical envelope.
const CLOSE: usize = 73;
const TIME_ENTRY: usize = 17;

/// The envelope `data` would be, read at the fixed offsets of that framing and checked no further
/// (its body is not decoded, its keys not compared beyond the framing); None when the bytes do not
/// have it. Only for ingest's remembered duplicates: when the id these bytes give is one the node
/// committed, the bytes are those of an envelope `parse` accepted, the signature aside (the id is
/// the hash of the rest), and every field read here is the one `parse` reads (a time encoded in
/// fewer bytes moves its entry, and no shorter encoding matches the key bytes checked here).
pub fn framed(data: &[u8]) -> Option<Envelope<'_>> {
    let n = data.len();
    if n > MAX_ENVELOPE_BYTES || !data.starts_with(AUTHOR_ENTRY) || !data.ends_with(V_ENTRY) {
        return None;
    }
    let sig_at = n.checked_sub(CLOSE)?;
    let sig_entry = data.get(sig_at..n - V_ENTRY.len())?;
    let (head, sig) = sig_entry.split_at_checked(SIG_ENTRY_HEAD.len())?;
    if head != SIG_ENTRY_HEAD {
        return None;
    }
    let sig: &[u8; 64] = sig.try_into().ok()?;
    let (kind, kind_at) = KINDS.iter().find_map(|k| {
        let at = sig_at.checked_sub(KIND_KEY.len() + 1 + k.len())?;
        let entry = data.get(at..sig_at)?;
        let ok = entry.starts_with(KIND_KEY)
            && entry.get(KIND_KEY.len()) == Some(&(0xa0 | k.len() as u8))
            && entry.get(KIND_KEY.len() + 1..) == Some(k.as_bytes());
        ok.then_some((*k, at))
    })?;
    let time = |at: usize, key: &[u8; 9]| -> Option<u64> {
        let entry = data.get(at..at + TIME_ENTRY)?;
        let (k, v) = entry.split_at_checked(key.len())?;
        (k == key).then(|| u64::from_be_bytes(v.try_into().unwrap_or([0xff; 8])))
    };
    let expires_at = kind_at.checked_sub(TIME_ENTRY)?;
    let created_at = expires_at.checked_sub(TIME_ENTRY)?;
    let (created, expires) = (
        time(created_at, CREATED_KEY)?,
        time(expires_at, EXPIRES_KEY)?,
    );
    let body_at = AUTHOR_ENTRY.len() + 32;
    if data.get(body_at..body_at + BODY_KEY.len())? != BODY_KEY
        || created_at <= body_at + BODY_KEY.len()
    {
        return None;
    }
    Some(Envelope {
        v: PROTOCOL_VERSION,
        author: data.get(AUTHOR_ENTRY.len()..body_at)?.try_into().ok()?,
        body_raw: data.get(body_at + BODY_KEY.len()..created_at)?,
        created,
        expires,
        kind,
        sig,
        signed_head: data.get(1..sig_at)?,
        signed_tail: data.get(n - V_ENTRY.len()..)?,
    })
}

fn wrong_type(what: &'static str) -> Error {
    Error::new(Reason::WrongType, what)
}

/// Decodes `data` canonically and checks the envelope fields, in PROTOCOL.md's order.
pub fn parse(data: &[u8]) -> Result<Envelope<'_>> {
    if data.len() > MAX_ENVELOPE_BYTES {
        return Err(Error::new(
            Reason::TooLarge,
            "envelope longer than 65536 bytes",
        ));
    }
    let mut r = Reader::new(data);
    let top = r.head(1)?;
    let n = match top {
        Head::Map(n) => n,
        other => {
            // The whole value is decoded before any field check.
            r.skip_children(other, 1)?;
            r.finish()?;
            return Err(wrong_type("envelope is not a map"));
        }
    };
    let mut slots: [Option<Slot<'_>>; 7] = [None; 7];
    let mut unknown = false;
    let mut prev: Option<&str> = None;
    for _ in 0..n {
        let entry_start = r.pos();
        let key = r.key(2, prev)?;
        prev = Some(key);
        let value_start = r.pos();
        let head = r.head(2)?;
        r.skip_children(head, 2)?;
        let slot = Slot {
            entry_start,
            value_start,
            value_end: r.pos(),
            head,
        };
        match KEYS.iter().position(|k| *k == key) {
            // Keys are strictly ascending, so each known key appears at most once.
            Some(i) => {
                if let Some(s) = slots.get_mut(i) {
                    *s = Some(slot);
                }
            }
            None => unknown = true,
        }
    }
    r.finish()?;

    // 2. v
    let v_slot = slots
        .get(V)
        .copied()
        .flatten()
        .ok_or(Error::new(Reason::MissingField, "missing field v"))?;
    let v = match v_slot.head {
        Head::UInt(v) => v,
        _ => return Err(wrong_type("v is not a uint")),
    };
    if v != PROTOCOL_VERSION {
        return Err(Error::new(
            Reason::UnsupportedVersion,
            "unsupported protocol version",
        ));
    }
    // 3. required fields, in order
    const MISSING: [&str; 6] = [
        "missing field author",
        "missing field body",
        "missing field created",
        "missing field expires",
        "missing field kind",
        "missing field sig",
    ];
    let mut present = [v_slot; 6];
    for ((slot, out), msg) in slots.iter().zip(present.iter_mut()).zip(MISSING) {
        match slot {
            Some(s) => *out = *s,
            None => return Err(Error::new(Reason::MissingField, msg)),
        }
    }
    let [author_s, body_s, created_s, expires_s, kind_s, sig_s] = present;
    // 4. unknown keys
    if unknown {
        return Err(Error::new(Reason::UnknownField, "unknown field"));
    }
    // 5. types
    let author: &[u8; 32] = match author_s.head {
        Head::Bin(b) => b
            .try_into()
            .map_err(|_| wrong_type("author is not 32 bytes"))?,
        _ => return Err(wrong_type("author is not bytes")),
    };
    let created = match created_s.head {
        Head::UInt(t) if t < TIME_LIMIT => t,
        _ => return Err(wrong_type("created is not a uint below 2^63")),
    };
    let expires = match expires_s.head {
        Head::UInt(t) if t < TIME_LIMIT => t,
        _ => return Err(wrong_type("expires is not a uint below 2^63")),
    };
    let kind = match kind_s.head {
        Head::Str(k) => k,
        _ => return Err(wrong_type("kind is not text")),
    };
    let sig: &[u8; 64] = match sig_s.head {
        Head::Bin(b) => b
            .try_into()
            .map_err(|_| wrong_type("sig is not 64 bytes"))?,
        _ => return Err(wrong_type("sig is not bytes")),
    };
    // 6. kind
    if !is_known_kind(kind) {
        return Err(Error::new(Reason::UnknownKind, "unknown kind"));
    }
    // 7. expiry
    if expires <= created {
        return Err(Error::new(
            Reason::BadExpiry,
            "expires is not after created",
        ));
    }

    // Exactly the seven keys, in canonical order: author .. kind, sig, v.
    let bad = || Error::new(Reason::Malformed, "internal: envelope layout");
    let body_raw = data
        .get(body_s.value_start..body_s.value_end)
        .ok_or_else(bad)?;
    let signed_head = data
        .get(author_s.entry_start..sig_s.entry_start)
        .ok_or_else(bad)?;
    let signed_tail = data
        .get(v_slot.entry_start..v_slot.value_end)
        .ok_or_else(bad)?;
    Ok(Envelope {
        v,
        author,
        body_raw,
        created,
        expires,
        kind,
        sig,
        signed_head,
        signed_tail,
    })
}

/// The envelope map of these fields (with `v` = PROTOCOL_VERSION), with or without `sig`.
pub fn envelope_value(
    author: Value,
    body: Value,
    created: Value,
    expires: Value,
    kind: Value,
    sig: Option<Value>,
) -> Value {
    let mut entries = Vec::with_capacity(7);
    entries.push(("author".to_owned(), author));
    entries.push(("body".to_owned(), body));
    entries.push(("created".to_owned(), created));
    entries.push(("expires".to_owned(), expires));
    entries.push(("kind".to_owned(), kind));
    if let Some(sig) = sig {
        entries.push(("sig".to_owned(), sig));
    }
    entries.push(("v".to_owned(), Value::UInt(PROTOCOL_VERSION)));
    Value::Map(entries)
}

/// The full canonical envelope from its fields. Refuses exactly what `parse` would refuse on the
/// result (so a built envelope always decodes): wrong types/lengths -> wrong_type, unknown kind,
/// bad expiry, and a result over the size cap -> too_large.
pub fn encode_envelope(
    author: Value,
    body: Value,
    created: Value,
    expires: Value,
    kind: Value,
    sig: Value,
) -> Result<Vec<u8>> {
    let value = envelope_value(author, body, created, expires, kind, Some(sig));
    let bytes = codec::encode(&value)?;
    parse(&bytes)?;
    Ok(bytes)
}

/// `SIGNING_PREFIX || canonical(envelope without sig)`. Refuses the same field problems as
/// `encode_envelope` (checked on the envelope these fields would make with a 64-byte signature).
pub fn signed_bytes(
    author: Value,
    body: Value,
    created: Value,
    expires: Value,
    kind: Value,
) -> Result<Vec<u8>> {
    let full = encode_envelope(
        author,
        body,
        created,
        expires,
        kind,
        Value::Bin(vec![0u8; 64]),
    )?;
    let env = parse(&full)?;
    Ok(env.signed_bytes())
}

/// The result of `decode_envelope`: all fields owned, plus signed bytes and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub v: u64,
    pub kind: String,
    pub author: [u8; 32],
    pub created: u64,
    pub expires: u64,
    pub body: Value,
    pub sig: [u8; 64],
    pub signed_bytes: Vec<u8>,
    pub id: [u8; 32],
}

/// Decode and check structure (no time, no signature).
pub fn decode_envelope(data: &[u8]) -> Result<Decoded> {
    let env = parse(data)?;
    Ok(Decoded {
        v: env.v,
        kind: env.kind.to_owned(),
        author: *env.author,
        created: env.created,
        expires: env.expires,
        body: env.body()?,
        sig: *env.sig,
        signed_bytes: env.signed_bytes(),
        id: env.id(),
    })
}
