//! ZIP-215 verification: RFC 8032 vectors, agreement with ed25519-zebra on random, mutated,
//! small-order and non-canonical inputs, batch == AND of singles, bisection exactness.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;

use _native::ed25519::{self, batch_check, verify, verify_batch};
use common::*;
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsBasepointTable, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable;
use sha2::{Digest, Sha512};

/// l, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn zebra(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(vk) = ed25519_zebra::VerificationKey::try_from(pk) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig) else {
        return false;
    };
    vk.verify(&ed25519_zebra::Signature::from_bytes(&sig), msg)
        .is_ok()
}

fn check(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let ours = verify(pk, msg, sig);
    assert_eq!(
        ours,
        with_table(pk, msg, sig),
        "the fixed-base table of A changed a verdict"
    );
    assert_eq!(
        ours,
        zebra(pk, msg, sig),
        "disagree with zebra: pk {} msg {} sig {}",
        hex::encode(pk),
        hex::encode(msg),
        hex::encode(sig)
    );
    ours
}

/// The single check through a fixed-base table of A (`hotkeys`), as `verify_one` does for a key
/// that signs often.
fn with_table(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let (Ok(pk32), Ok(sig64)) = (<[u8; 32]>::try_from(pk), <[u8; 64]>::try_from(sig)) else {
        return false;
    };
    let Some(a) = ed25519::decompress(&pk32) else {
        return false;
    };
    thread_local! {  // a table costs ~2 ms: one per key these tests use
        static TABLES: RefCell<HashMap<[u8; 32], EdwardsBasepointTable>> = RefCell::new(HashMap::new());
    }
    TABLES.with_borrow_mut(|tables| {
        let table = tables
            .entry(pk32)
            .or_insert_with(|| EdwardsBasepointTable::create(&a));
        ed25519::prepare(&a, &pk32, &[msg], &sig64)
            .is_some_and(|p| ed25519::check_one_with(&p, table))
    })
}

#[test]
fn rfc8032_tests_1_to_3() {
    let vectors = [
        (
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];
    let mut batch = Vec::new();
    for (pk, msg, sig) in vectors {
        let (pk, msg, sig) = (hex(pk), hex(msg), hex(sig));
        assert!(check(&pk, &msg, &sig));
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(!check(&pk, &msg, &bad));
        let mut m2 = msg.clone();
        m2.push(0);
        assert!(!check(&pk, &m2, &sig));
        batch.push((pk, msg, sig));
    }
    assert_eq!(verify_batch(&batch), vec![true; 3]);
    assert!(batch_check(&batch));
}

#[test]
fn wrong_lengths_are_false() {
    let sk = signer([1; 32]);
    let pk = public(&sk);
    let sig: [u8; 64] = sk.sign(b"m").into();
    assert!(verify(&pk, b"m", &sig));
    assert!(!verify(&pk[..31], b"m", &sig));
    assert!(!verify(&[pk.as_slice(), &[0]].concat(), b"m", &sig));
    assert!(!verify(&pk, b"m", &sig[..63]));
    assert!(!verify(&pk, b"m", &[sig.as_slice(), &[0]].concat()));
    assert!(!verify(&[], b"", &[]));
    let items = vec![
        (pk.to_vec(), b"m".to_vec(), sig.to_vec()),
        (pk[..31].to_vec(), b"m".to_vec(), sig.to_vec()),
    ];
    assert_eq!(verify_batch(&items), vec![true, false]);
    assert!(!batch_check(&items));
    let empty: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = vec![];
    assert!(batch_check(&empty));
    assert!(verify_batch(&empty).is_empty());
}

/// Encodings of every small-order point, plus non-canonical encodings (y + p, and x = 0 with
/// the sign bit set) of those that have them.
fn small_order_encodings() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for t in EIGHT_TORSION.iter() {
        let c = t.compress().to_bytes();
        out.push(c);
        // x = 0 with sign bit set (for (0, 1) and (0, -1))
        let mut neg = c;
        neg[31] |= 0x80;
        out.push(neg);
    }
    // non-canonical y = small value + p, where the small value is on the curve
    out.extend(non_canonical_encodings());
    out
}

/// y + p for every y in 0..19 that decodes (so y + p < 2^255 is a non-canonical encoding),
/// with both sign bits.
fn non_canonical_encodings() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for y in 0u8..19 {
        // p = 2^255 - 19; y + p = 2^255 - 19 + y
        let mut enc = [0xffu8; 32];
        enc[0] = 0xed + y; // 0xed = 256 - 19
        enc[31] = 0x7f;
        let mut canon = [0u8; 32];
        canon[0] = y;
        for sign in [0u8, 0x80] {
            let mut e = enc;
            e[31] |= sign;
            let mut c = canon;
            c[31] |= sign;
            let a = CompressedEdwardsY(e).decompress();
            let b = CompressedEdwardsY(c).decompress();
            assert_eq!(
                a.map(|p| p.compress()),
                b.map(|p| p.compress()),
                "y={y} sign={sign}"
            );
            if a.is_some() {
                out.push(e);
            }
        }
    }
    assert!(!out.is_empty());
    out
}

fn k_of(r: &[u8], a: &[u8], m: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(m);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

fn sig_bytes(r: &[u8; 32], s: &Scalar) -> Vec<u8> {
    [r.as_slice(), s.as_bytes()].concat()
}

/// Signs with A = [a]B + T_a, R = [r]B + T_r (torsion components): accepted by the cofactored
/// check (ZIP-215), refused by a cofactorless one when a torsion component survives.
fn torsion_signature(rng: &mut Rng, ta: usize, tr: usize, msg: &[u8]) -> ([u8; 32], Vec<u8>) {
    let a = Scalar::from_bytes_mod_order(rng.bytes::<32>());
    let r = Scalar::from_bytes_mod_order(rng.bytes::<32>());
    let big_a = (B * a + EIGHT_TORSION[ta]).compress().to_bytes();
    let big_r = (B * r + EIGHT_TORSION[tr]).compress().to_bytes();
    let k = k_of(&big_r, &big_a, msg);
    let s = r + k * a;
    (big_a, sig_bytes(&big_r, &s))
}

#[test]
fn agrees_with_zebra_on_random_and_mutated_triples() {
    let mut rng = Rng::new(42);
    let mut accepted = 0;
    let mut items = Vec::new();
    let rounds = scale(300, 10);
    for _ in 0..rounds {
        let sk = signer(rng.bytes::<32>());
        let pk = public(&sk);
        let len = rng.below(100);
        let msg = rng.vec(len);
        let sig: [u8; 64] = sk.sign(&msg).into();
        if check(&pk, &msg, &sig) {
            accepted += 1;
        }
        items.push((pk.to_vec(), msg.clone(), sig.to_vec()));
        // mutations: a bit of R, of S, of A, of the message
        for _ in 0..3 {
            let mut s2 = sig;
            let bit = rng.below(512);
            s2[bit / 8] ^= 1 << (bit % 8);
            check(&pk, &msg, &s2);
            let mut p2 = pk;
            let bit = rng.below(256);
            p2[bit / 8] ^= 1 << (bit % 8);
            check(&p2, &msg, &sig);
            let mut m2 = msg.clone();
            if m2.is_empty() {
                m2.push(1);
            } else {
                let j = rng.below(m2.len());
                m2[j] ^= 1;
            }
            assert!(!check(&pk, &m2, &sig));
        }
        // S + l (non-canonical S) is refused, S itself accepted
        let s = Scalar::from_canonical_bytes(<[u8; 32]>::try_from(&sig[32..]).unwrap()).unwrap();
        let mut s_plus_l = [0u8; 32];
        let mut carry = 0u16;
        for j in 0..32 {
            let v = u16::from(s.as_bytes()[j]) + u16::from(L[j]) + carry;
            s_plus_l[j] = v as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0);
        let bad = [&sig[..32], &s_plus_l[..]].concat();
        assert!(!check(&pk, &msg, &bad));
        // random garbage signatures and keys
        let g: [u8; 64] = rng.bytes();
        check(&pk, &msg, &g);
        let gk: [u8; 32] = rng.bytes();
        check(&gk, &msg, &sig);
    }
    assert_eq!(accepted, rounds);
    assert_eq!(verify_batch(&items), vec![true; items.len()]);
}

#[test]
fn agrees_with_zebra_on_small_order_and_non_canonical_points() {
    let encs = small_order_encodings();
    let mut rng = Rng::new(99);
    let msg = b"zip215 edge cases";
    let mut n_accept = 0;
    let mut items = Vec::new();
    // every pair, or a sample of them
    let step = scale(1, 7);
    for (ia, a) in encs.iter().enumerate() {
        for r in encs.iter().skip(ia % step).step_by(step) {
            // S = 0: valid iff [8](-R - kA) = 0, true for every small-order pair
            let sig = sig_bytes(r, &Scalar::ZERO);
            if check(a, msg, &sig) {
                n_accept += 1;
            }
            items.push((a.to_vec(), msg.to_vec(), sig.clone()));
            // a random S
            let s = Scalar::from_bytes_mod_order(rng.bytes::<32>());
            let sig2 = sig_bytes(r, &s);
            check(a, msg, &sig2);
            items.push((a.to_vec(), msg.to_vec(), sig2));
        }
    }
    assert!(n_accept > 0);
    // batch agrees with singles on all of these
    let singles: Vec<bool> = items.iter().map(|(a, m, s)| verify(a, m, s)).collect();
    assert_eq!(verify_batch(&items), singles);
}

#[test]
fn cofactored_acceptance_of_torsion_components() {
    let mut rng = Rng::new(5);
    let msg = b"mixed-order";
    let mut items = Vec::new();
    for ta in 0..8 {
        for tr in 0..8 {
            let (pk, sig) = torsion_signature(&mut rng, ta, tr, msg);
            // cofactored: always accepted
            assert!(check(&pk, msg, &sig), "ta={ta} tr={tr}");
            items.push((pk.to_vec(), msg.to_vec(), sig));
        }
    }
    assert_eq!(verify_batch(&items), vec![true; 64]);
    assert!(batch_check(&items));
    // non-canonical encodings of small-order points (y = 0 + p and y = 1 + p, both signs), as
    // the key and as R, in signatures that only the cofactored equation accepts
    let small: Vec<[u8; 32]> = non_canonical_encodings()
        .into_iter()
        .filter(|e| {
            CompressedEdwardsY(*e)
                .decompress()
                .unwrap()
                .is_small_order()
        })
        .collect();
    assert_eq!(small.len(), 4);
    for y_enc in small {
        // key = torsion point T (non-canonical bytes), R = [r]B, S = r: [S]B - R - [k]T = -[k]T
        let r = Scalar::from_bytes_mod_order(rng.bytes::<32>());
        let big_r = (B * r).compress().to_bytes();
        let sig = sig_bytes(&big_r, &r);
        assert!(check(&y_enc, msg, &sig));
        items.push((y_enc.to_vec(), msg.to_vec(), sig));
        // R = T (non-canonical bytes), regular key: S = k*a gives [S]B - T - [k]A = -T
        let a = Scalar::from_bytes_mod_order(rng.bytes::<32>());
        let big_a = (B * a).compress().to_bytes();
        let k = k_of(&y_enc, &big_a, msg);
        let sig2 = sig_bytes(&y_enc, &(k * a));
        assert!(check(&big_a, msg, &sig2));
        items.push((big_a.to_vec(), msg.to_vec(), sig2));
    }
    let n = items.len();
    assert_eq!(verify_batch(&items), vec![true; n]);
}

fn valid_items(rng: &mut Rng, n: usize, keys: usize) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let sks: Vec<_> = (0..keys).map(|_| signer(rng.bytes::<32>())).collect();
    (0..n)
        .map(|i| {
            let sk = &sks[i % keys];
            let len = 1 + rng.below(64);
            let msg = rng.vec(len);
            let sig: [u8; 64] = sk.sign(&msg).into();
            (public(sk).to_vec(), msg, sig.to_vec())
        })
        .collect()
}

fn corrupt(item: &mut (Vec<u8>, Vec<u8>, Vec<u8>), how: usize) {
    match how % 5 {
        0 => item.2[5] ^= 0x10,  // R
        1 => item.2[40] ^= 0x01, // S
        2 => item.1.push(0),     // message
        3 => item.2[63] |= 0xf0, // S >= l
        _ => item.0[3] ^= 0x40,  // key (maybe undecodable)
    }
}

#[test]
fn bisection_finds_exactly_the_bad_item_at_every_position() {
    let mut rng = Rng::new(17);
    for (n, keys) in [(17usize, 17usize), (64, 64), (64, 5), (17, 1)] {
        let good = valid_items(&mut rng, n, keys);
        assert_eq!(verify_batch(&good), vec![true; n]);
        assert!(batch_check(&good));
        for pos in positions(n) {
            let mut items = good.clone();
            corrupt(&mut items[pos], pos);
            let mut expect = vec![true; n];
            expect[pos] = false;
            assert_eq!(verify_batch(&items), expect, "n={n} keys={keys} pos={pos}");
            assert!(!batch_check(&items));
        }
    }
}

#[test]
fn batch_equals_and_of_singles_with_many_bad() {
    let mut rng = Rng::new(23);
    for round in 0..scale(12, 3) {
        let n = [2usize, 3, 4, 5, 8, 31, 64, 100][round % 8];
        let mut items = valid_items(&mut rng, n, 1 + round % 4);
        let bad = rng.below(n + 1);
        for j in 0..bad {
            let pos = rng.below(n);
            corrupt(&mut items[pos], j + round);
        }
        // and some torsion-component signatures, which are valid
        for _ in 0..3 {
            let pos = rng.below(n);
            let msg = items[pos].1.clone();
            let (ta, tr) = (rng.below(8), rng.below(8));
            let (pk, sig) = torsion_signature(&mut rng, ta, tr, &msg);
            items[pos] = (pk.to_vec(), msg, sig);
        }
        let singles: Vec<bool> = items.iter().map(|(a, m, s)| check(a, m, s)).collect();
        assert_eq!(verify_batch(&items), singles, "round {round}");
        assert_eq!(
            batch_check(&items),
            singles.iter().all(|&b| b),
            "round {round}"
        );
    }
}

#[test]
fn equal_keys_are_coalesced_correctly() {
    // one key, many signatures; a bad one among them; and the same point under two encodings
    let mut rng = Rng::new(31);
    let mut items = valid_items(&mut rng, 40, 1);
    assert!(batch_check(&items));
    items[33].2[1] ^= 1;
    let mut expect = vec![true; 40];
    expect[33] = false;
    assert_eq!(verify_batch(&items), expect);
    // canonical and non-canonical encodings of the same small-order point as keys in one batch
    let msg = b"same point";
    let canon = [0u8; 32]; // y = 0 decodes? only if on the curve; find the first that does
    let _ = canon;
    let nc = non_canonical_encodings();
    let mut batch = Vec::new();
    for e in nc.iter().take(4) {
        let mut c = [0u8; 32];
        c[0] = e[0].wrapping_sub(0xed);
        c[31] = e[31] & 0x80;
        for key in [*e, c] {
            let sig = sig_bytes(&EIGHT_TORSION[2].compress().to_bytes(), &Scalar::ZERO);
            batch.push((key.to_vec(), msg.to_vec(), sig));
        }
    }
    let singles: Vec<bool> = batch.iter().map(|(a, m, s)| check(a, m, s)).collect();
    assert_eq!(verify_batch(&batch), singles);
}

#[test]
fn prepared_api_matches_raw() {
    let mut rng = Rng::new(77);
    let items = valid_items(&mut rng, 10, 3);
    let mut prepared = Vec::new();
    for (pk, msg, sig) in &items {
        let pk32: [u8; 32] = pk.as_slice().try_into().unwrap();
        let sig64: [u8; 64] = sig.as_slice().try_into().unwrap();
        let a = ed25519::decompress(&pk32).unwrap();
        // the message in pieces hashes the same as whole
        let (m1, m2) = msg.split_at(msg.len() / 2);
        let p = ed25519::prepare(&a, &pk32, &[m1, m2], &sig64).unwrap();
        assert!(ed25519::check_one(&p));
        prepared.push(p);
    }
    assert!(ed25519::prepared_batch_check(&prepared));
    assert_eq!(ed25519::verify_prepared_batch(&prepared), vec![true; 10]);
    assert!(ed25519::prepared_batch_check(&[]));
    let z = ed25519::random_coefficients(3).unwrap();
    assert_eq!(z.len(), 3);
    assert_ne!(z[0], z[1]);
    let _: EdwardsPoint = B;
}

#[test]
fn many_bad_items_are_all_found() {
    let mut rng = Rng::new(61);
    for n in [17usize, 64] {
        let good = valid_items(&mut rng, n, 3);
        // all bad, every other one bad, the first and last bad, a run of bad in the middle
        let patterns: Vec<Vec<bool>> = vec![
            vec![false; n],
            (0..n).map(|i| i % 2 == 0).collect(),
            (0..n).map(|i| i != 0 && i != n - 1).collect(),
            (0..n).map(|i| !(n / 3..n / 3 + 5).contains(&i)).collect(),
        ];
        for expect in patterns {
            let mut items = good.clone();
            for (i, ok) in expect.iter().enumerate() {
                if !ok {
                    corrupt(&mut items[i], i);
                }
            }
            assert_eq!(verify_batch(&items), expect, "n={n}");
        }
    }
}
