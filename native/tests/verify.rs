//! The envelope verification pipeline: reasons in order, ids, batch == one-by-one, key cache.

mod common;

use std::sync::Mutex;

use _native::codec::{Value, MAX_ENVELOPE_BYTES};
use _native::envelope::{self, MAX_CLOCK_SKEW_MS};
use _native::hotkeys::HotKeys;
use _native::keycache::KeyCache;
use _native::reason::Reason;
use _native::verify::{verify_batch, verify_one, Outcome};
use common::*;
use sha2::{Digest, Sha256};

fn cache() -> Mutex<KeyCache> {
    Mutex::new(KeyCache::new(64))
}

/// `verify_one` twice, with no fixed-base tables and with one for every key from its first use:
/// the two checks must agree on every input of these tests.
fn one(c: &Mutex<KeyCache>, data: &[u8], now: i64) -> Outcome {
    let plain = verify_one(c, &Mutex::new(HotKeys::new(0, 1)), data, now);
    let tabled = verify_one(c, &Mutex::new(HotKeys::new(4, 1)), data, now);
    assert_eq!(plain, tabled, "the fixed-base table changed a verdict");
    plain
}

fn id_of(env: &[u8]) -> [u8; 32] {
    Sha256::digest(envelope::parse(env).unwrap().signed_bytes()).into()
}

/// An envelope whose author bytes are not a point, signed by nobody in particular.
fn bad_key_envelope() -> Vec<u8> {
    // y = 2 is not on the curve (checked below)
    let mut author = [0u8; 32];
    author[0] = 2;
    assert!(_native::ed25519::decompress(&author).is_none());
    envelope::encode_envelope(
        Value::Bin(author.to_vec()),
        Value::Nil,
        Value::UInt(NOW as u64),
        Value::UInt(NOW as u64 + 10),
        s("grant"),
        Value::Bin(vec![0; 64]),
    )
    .unwrap()
}

fn flip_sig(env: &[u8]) -> Vec<u8> {
    // the signature is the 64 bytes after "\xa3sig\xc4\x40"
    let pos = env
        .windows(6)
        .position(|w| w == b"\xa3sig\xc4\x40")
        .unwrap()
        + 6;
    let mut e = env.to_vec();
    e[pos + 40] ^= 1;
    e
}

#[test]
fn valid_envelopes_pass_with_ids() {
    let c = cache();
    let sks: Vec<_> = (0..5u8).map(|i| signer([i; 32])).collect();
    let envs: Vec<Vec<u8>> = (0..20)
        .map(|i| envelope_signed(&sks[i % 5], i as u64))
        .collect();
    let out = verify_batch(&c, &envs, NOW);
    for (o, e) in out.iter().zip(&envs) {
        assert_eq!(
            *o,
            Outcome {
                reason: Reason::Ok,
                id: Some(id_of(e))
            }
        );
        assert_eq!(one(&c, e, NOW), *o);
    }
    assert_eq!(c.lock().unwrap().len(), 5);
}

#[test]
fn reasons_in_order_and_ids() {
    let c = cache();
    let sk = signer([7; 32]);
    let good = envelope_signed(&sk, 1);
    let n = NOW as u64;
    let future = envelope_with(
        &sk,
        Value::Nil,
        n + MAX_CLOCK_SKEW_MS + 1,
        n + MAX_CLOCK_SKEW_MS + 100,
        "offer",
    );
    let edge_future = envelope_with(
        &sk,
        Value::Nil,
        n + MAX_CLOCK_SKEW_MS,
        n + MAX_CLOCK_SKEW_MS + 100,
        "offer",
    );
    let expired = envelope_with(&sk, Value::Nil, n - 100, n, "offer");
    let just_live = envelope_with(&sk, Value::Nil, n - 100, n + 1, "offer");
    // both not yet valid and expired cannot happen (expires > created); not_yet_valid with a bad
    // signature: not_yet_valid
    let future_bad_sig = flip_sig(&future);
    let expired_bad_sig = flip_sig(&expired);
    let bad_key = bad_key_envelope();
    let bad_sig = flip_sig(&good);
    let mut too_large = vec![0x90];
    too_large.resize(MAX_ENVELOPE_BYTES + 1, 0);
    let items: Vec<(&[u8], Reason, bool)> = vec![
        (&good, Reason::Ok, true),
        (b"\xc1", Reason::Malformed, false),
        (&future, Reason::NotYetValid, true),
        (&edge_future, Reason::Ok, true),
        (&expired, Reason::Expired, true),
        (&just_live, Reason::Ok, true),
        (&future_bad_sig, Reason::NotYetValid, true),
        (&expired_bad_sig, Reason::Expired, true),
        (&bad_key, Reason::BadKey, true),
        (&bad_sig, Reason::BadSignature, true),
        (&too_large, Reason::TooLarge, false),
        (b"\x90", Reason::WrongType, false),
        (&good[..good.len() - 1], Reason::Malformed, false),
    ];
    let datas: Vec<&[u8]> = items.iter().map(|(d, _, _)| *d).collect();
    let out = verify_batch(&c, &datas, NOW);
    for (i, ((data, reason, has_id), o)) in items.iter().zip(&out).enumerate() {
        assert_eq!(o.reason, *reason, "item {i}");
        assert_eq!(o.id.is_some(), *has_id, "item {i} id");
        if *has_id {
            assert_eq!(o.id.unwrap(), id_of(data));
        }
        assert_eq!(one(&c, data, NOW), *o, "verify_one item {i}");
    }
    // the id does not depend on the signature
    assert_eq!(out[9].id, out[0].id);
}

#[test]
fn bad_signature_at_every_position() {
    let c = cache();
    let sks: Vec<_> = (0..4u8).map(|i| signer([i + 100; 32])).collect();
    for n in [1usize, 2, 5, 17, 64] {
        let good: Vec<Vec<u8>> = (0..n)
            .map(|i| envelope_signed(&sks[i % 4], i as u64))
            .collect();
        for pos in positions(n) {
            let mut envs = good.clone();
            envs[pos] = flip_sig(&envs[pos]);
            let out = verify_batch(&c, &envs, NOW);
            for (i, o) in out.iter().enumerate() {
                let expect = if i == pos {
                    Reason::BadSignature
                } else {
                    Reason::Ok
                };
                assert_eq!(o.reason, expect, "n={n} pos={pos} i={i}");
            }
        }
    }
}

#[test]
fn wrong_key_signature_is_bad() {
    let c = cache();
    let a = signer([1; 32]);
    let b = signer([2; 32]);
    // signed by b over a's signed bytes
    let good = envelope_signed(&a, 3);
    let e = envelope::parse(&good).unwrap();
    let sig: [u8; 64] = b.sign(&e.signed_bytes()).into();
    let forged = envelope::encode_envelope(
        Value::Bin(e.author.to_vec()),
        e.body().unwrap(),
        Value::UInt(e.created),
        Value::UInt(e.expires),
        s(e.kind),
        Value::Bin(sig.to_vec()),
    )
    .unwrap();
    assert_eq!(one(&c, &forged, NOW).reason, Reason::BadSignature);
    assert_eq!(
        verify_batch(&c, &[good.clone(), forged.clone(), good], NOW)
            .iter()
            .map(|o| o.reason)
            .collect::<Vec<_>>(),
        [Reason::Ok, Reason::BadSignature, Reason::Ok]
    );
}

#[test]
fn cache_is_bounded_and_optional() {
    let sks: Vec<_> = (0..10u8).map(|i| signer([i + 50; 32])).collect();
    let envs: Vec<Vec<u8>> = (0..10)
        .map(|i| envelope_signed(&sks[i], i as u64))
        .collect();
    let small = Mutex::new(KeyCache::new(3));
    assert!(verify_batch(&small, &envs, NOW)
        .iter()
        .all(|o| o.reason == Reason::Ok));
    assert_eq!(small.lock().unwrap().len(), 3);
    let none = Mutex::new(KeyCache::new(0));
    assert!(verify_batch(&none, &envs, NOW)
        .iter()
        .all(|o| o.reason == Reason::Ok));
    assert!(envs.iter().all(|e| one(&none, e, NOW).reason == Reason::Ok));
    assert_eq!(none.lock().unwrap().len(), 0);
    // empty batch
    let empty: Vec<Vec<u8>> = vec![];
    assert!(verify_batch(&none, &empty, NOW).is_empty());
}

#[test]
fn extreme_clocks() {
    let c = cache();
    let sk = signer([8; 32]);
    // Created 0 and never expiring: refused at every clock, before the clock is looked at.
    let forever = envelope_with(&sk, Value::Nil, 0, (1 << 63) - 1, "receipt");
    for now in [i64::MIN, 0, NOW, i64::MAX] {
        assert_eq!(one(&c, &forever, now).reason, Reason::TooLongLived);
    }
    // A receipt living exactly its kind's maximum.
    let e = envelope_with(&sk, Value::Nil, 0, 3650 * 86_400_000, "receipt");
    assert_eq!(one(&c, &e, i64::MIN).reason, Reason::NotYetValid);
    assert_eq!(one(&c, &e, -(MAX_CLOCK_SKEW_MS as i64)).reason, Reason::Ok);
    assert_eq!(one(&c, &e, i64::MAX).reason, Reason::Expired);
    assert_eq!(one(&c, &e, 0).reason, Reason::Ok);
    let late = envelope_with(&sk, Value::Nil, (1 << 63) - 2, (1 << 63) - 1, "receipt");
    assert_eq!(one(&c, &late, NOW).reason, Reason::NotYetValid);
    assert_eq!(one(&c, &late, i64::MAX - 1).reason, Reason::Ok);
}

#[test]
fn fuzzed_envelopes_never_panic_and_agree() {
    let c = cache();
    let sk = signer([9; 32]);
    let good = envelope_signed(&sk, 1);
    let mut rng = Rng::new(3);
    let mut batch = Vec::new();
    for _ in 0..scale(400, 40) {
        let mut d = good.clone();
        for _ in 0..1 + rng.below(2) {
            let i = rng.below(d.len());
            d[i] ^= 1 << rng.below(8);
        }
        batch.push(d);
    }
    let out = verify_batch(&c, &batch, NOW);
    for (d, o) in batch.iter().zip(&out) {
        assert_eq!(one(&c, d, NOW), *o);
        assert_ne!(
            o.reason,
            Reason::Ok,
            "a bit flip must not verify: {}",
            hex::encode(d)
        );
    }
}
