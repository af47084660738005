//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod codec_checks;

use _native::codec::{self, Value};
use _native::envelope;

/// A small deterministic PRNG (xorshift64*), so tests need no rand crate and are reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in out.iter_mut() {
            *b = self.next_u64() as u8;
        }
        out
    }
    pub fn vec(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

pub fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test hex")
}

pub fn s(x: &str) -> Value {
    Value::Str(x.to_owned())
}

pub fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// A signing key from a seed.
pub fn signer(seed: [u8; 32]) -> ed25519_zebra::SigningKey {
    ed25519_zebra::SigningKey::from(seed)
}

pub fn public(sk: &ed25519_zebra::SigningKey) -> [u8; 32] {
    sk.verification_key().into()
}

pub const NOW: i64 = 1_700_000_000_000;

pub fn body(i: u64) -> Value {
    map(&[
        ("amount", Value::UInt(1000 + i)),
        ("currency", s("EUR")),
        (
            "lines",
            Value::Array(vec![
                Value::int(-5),
                Value::Bin(vec![1, 2, 3]),
                Value::Nil,
                Value::Bool(true),
            ]),
        ),
        ("note", s("héllo wörld")),
    ])
}

/// A valid signed envelope (created = NOW, expires = NOW + 60 s).
pub fn envelope_signed(sk: &ed25519_zebra::SigningKey, i: u64) -> Vec<u8> {
    envelope_with(sk, body(i), NOW as u64, NOW as u64 + 60_000, "offer")
}

pub fn envelope_with(
    sk: &ed25519_zebra::SigningKey,
    body: Value,
    created: u64,
    expires: u64,
    kind: &str,
) -> Vec<u8> {
    let author = public(sk);
    let sb = envelope::signed_bytes(
        Value::Bin(author.to_vec()),
        body.clone(),
        Value::UInt(created),
        Value::UInt(expires),
        s(kind),
    )
    .expect("signed bytes");
    let sig: [u8; 64] = sk.sign(&sb).into();
    envelope::encode_envelope(
        Value::Bin(author.to_vec()),
        body,
        Value::UInt(created),
        Value::UInt(expires),
        s(kind),
        Value::Bin(sig.to_vec()),
    )
    .expect("encode envelope")
}

/// Canonical encoding of a raw map given in the written order (may be unsorted/invalid).
pub fn raw_map(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    codec::write_map_header(&mut out, entries.len()).unwrap();
    for (k, v) in entries {
        out.extend_from_slice(k);
        out.extend_from_slice(v);
    }
    out
}

pub fn enc(v: &Value) -> Vec<u8> {
    codec::encode(v).expect("encode")
}

/// Whether the curve arithmetic runs optimised. An unoptimised curve25519-dalek (a plain
/// `cargo test` without `[profile.dev.package.curve25519-dalek] opt-level = 3` in the workspace
/// manifest) is ~250x slower; the heaviest loops then run on a sample instead of everything.
pub fn full() -> bool {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};
    static FULL: OnceLock<bool> = OnceLock::new();
    *FULL.get_or_init(|| {
        if std::env::var_os("VRM_FULL_TESTS").is_some() {
            return true;
        }
        let sk = signer([0x11; 32]);
        let pk = public(&sk);
        let sig: [u8; 64] = sk.sign(b"calibrate").into();
        let t = Instant::now();
        for _ in 0..3 {
            assert!(_native::ed25519::verify(&pk, b"calibrate", &sig));
        }
        let fast = t.elapsed() < Duration::from_millis(6);
        if !fast {
            eprintln!("note: unoptimised curve arithmetic; heavy tests run on a sample (set VRM_FULL_TESTS=1 to force all)");
        }
        fast
    })
}

/// `full` when the arithmetic is fast, else `sample`.
pub fn scale(full_n: usize, sample: usize) -> usize {
    if full() {
        full_n
    } else {
        sample
    }
}

/// Positions to test in a batch of n: all of them, or a spread sample.
pub fn positions(n: usize) -> Vec<usize> {
    if full() || n <= 4 {
        (0..n).collect()
    } else {
        let mut p = vec![0, 1, n / 2, n - 1];
        p.dedup();
        p
    }
}
