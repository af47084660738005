//! Envelopes: field-check order, signed bytes splicing, ids, encode/decode round trips.

mod common;

use _native::codec::{self, Value, MAX_ENVELOPE_BYTES};
use _native::envelope::{self, decode_envelope, parse, KINDS, SIGNING_PREFIX};
use _native::reason::Reason;
use common::*;
use sha2::{Digest, Sha256};

fn reason(data: &[u8]) -> Reason {
    parse(data).expect_err("should be refused").reason
}

fn good_fields() -> Vec<(&'static str, Value)> {
    vec![
        ("author", Value::Bin(vec![1; 32])),
        ("body", map(&[("x", Value::UInt(1))])),
        ("created", Value::UInt(1000)),
        ("expires", Value::UInt(2000)),
        ("kind", s("offer")),
        ("sig", Value::Bin(vec![2; 64])),
        ("v", Value::UInt(1)),
    ]
}

fn with(changes: &[(&'static str, Option<Value>)]) -> Vec<u8> {
    let mut f = good_fields();
    for (k, v) in changes {
        f.retain(|(name, _)| name != k);
        if let Some(v) = v {
            f.push((k, v.clone()));
        }
    }
    enc(&map(&f))
}

#[test]
fn good_envelope_parses() {
    let b = with(&[]);
    let e = parse(&b).unwrap();
    assert_eq!(e.v, 1);
    assert_eq!(e.author, &[1; 32]);
    assert_eq!(e.created, 1000);
    assert_eq!(e.expires, 2000);
    assert_eq!(e.kind, "offer");
    assert_eq!(e.sig, &[2; 64]);
    assert_eq!(e.body().unwrap(), map(&[("x", Value::UInt(1))]));
}

#[test]
fn signed_bytes_are_the_canonical_map_without_sig() {
    for i in 0..20u64 {
        let body = match i % 4 {
            0 => body(i),
            1 => Value::Nil,
            2 => Value::Array(vec![Value::UInt(i); i as usize]),
            _ => s(&"y".repeat(i as usize * 20)),
        };
        let mut f = good_fields();
        f[1] = ("body", body.clone());
        f[2] = ("created", Value::UInt(i * 1_000_000_007));
        f[3] = ("expires", Value::UInt(i * 1_000_000_007 + 1 + i * 99999));
        f[4] = ("kind", s(KINDS[i as usize % KINDS.len()]));
        let b = enc(&map(&f));
        let e = parse(&b).unwrap();
        let no_sig: Vec<(&str, Value)> = f.iter().filter(|(k, _)| *k != "sig").cloned().collect();
        let mut expect = SIGNING_PREFIX.to_vec();
        expect.extend(enc(&map(&no_sig)));
        assert_eq!(e.signed_bytes(), expect);
        assert_eq!(e.signed_len(), expect.len());
        let id: [u8; 32] = Sha256::digest(&expect).into();
        assert_eq!(e.id(), id);
        // and the builders agree
        let sb = envelope::signed_bytes(
            f[0].1.clone(),
            body.clone(),
            f[2].1.clone(),
            f[3].1.clone(),
            f[4].1.clone(),
        )
        .unwrap();
        assert_eq!(sb, expect);
        let full = envelope::encode_envelope(
            f[0].1.clone(),
            body.clone(),
            f[2].1.clone(),
            f[3].1.clone(),
            f[4].1.clone(),
            f[5].1.clone(),
        )
        .unwrap();
        assert_eq!(full, b);
        let d = decode_envelope(&b).unwrap();
        assert_eq!(d.body, body);
        assert_eq!(d.signed_bytes, expect);
        assert_eq!(d.id, id);
        assert_eq!(d.kind, KINDS[i as usize % KINDS.len()]);
    }
}

#[test]
fn signing_prefix_is_16_bytes() {
    assert_eq!(SIGNING_PREFIX.len(), 16);
    assert_eq!(&SIGNING_PREFIX[..], b"vrm-envelope-v1\0");
    let mut sorted = KINDS.to_vec();
    sorted.sort();
    assert_eq!(sorted, KINDS);
}

#[test]
fn check_1_not_a_map() {
    assert_eq!(reason(&enc(&Value::Array(vec![]))), Reason::WrongType);
    assert_eq!(reason(&enc(&Value::UInt(1))), Reason::WrongType);
    assert_eq!(reason(&enc(&s("x"))), Reason::WrongType);
    // the whole value is decoded first: codec problems and trailing bytes come before wrong_type
    assert_eq!(reason(&hex("92c1")), Reason::Malformed);
    assert_eq!(reason(&hex("9201ca")), Reason::FloatForbidden);
    assert_eq!(reason(&hex("0101")), Reason::TrailingBytes);
    // too_large before everything
    assert_eq!(
        reason(&vec![0x90; MAX_ENVELOPE_BYTES + 1]),
        Reason::TooLarge
    );
}

#[test]
fn codec_problems_come_before_field_checks() {
    // an unknown kind plus trailing bytes: trailing_bytes
    let mut b = with(&[("kind", Some(s("nope")))]);
    b.push(0);
    assert_eq!(reason(&b), Reason::TrailingBytes);
    // missing v, but a float in the body: float_forbidden
    let mut f = good_fields();
    f.retain(|(k, _)| *k != "v");
    let mut b = enc(&map(&f));
    // body {"x": 1} -> make the value a float by hand: replace the 0x01 after "a178"
    let pos = b.windows(3).position(|w| w == [0xa1, b'x', 0x01]).unwrap();
    b.splice(pos + 2..pos + 3, hex("ca00000000"));
    b[0] = 0x86;
    assert_eq!(reason(&b), Reason::FloatForbidden);
}

#[test]
fn check_2_version() {
    // v missing: missing_field even with everything else wrong
    assert_eq!(
        reason(&enc(&map(&[("author", Value::Nil), ("zzz", Value::Nil)]))),
        Reason::MissingField
    );
    assert_eq!(reason(&with(&[("v", None)])), Reason::MissingField);
    assert_eq!(reason(&with(&[("v", Some(s("1")))])), Reason::WrongType);
    assert_eq!(
        reason(&with(&[("v", Some(Value::NInt(-1)))])),
        Reason::WrongType
    );
    assert_eq!(
        reason(&with(&[("v", Some(Value::Bool(true)))])),
        Reason::WrongType
    );
    assert_eq!(
        reason(&with(&[("v", Some(Value::UInt(2)))])),
        Reason::UnsupportedVersion
    );
    assert_eq!(
        reason(&with(&[("v", Some(Value::UInt(0)))])),
        Reason::UnsupportedVersion
    );
    // v wrong before missing fields / unknown fields
    assert_eq!(
        reason(&enc(&map(&[("v", Value::UInt(2)), ("zzz", Value::Nil)]))),
        Reason::UnsupportedVersion
    );
    assert_eq!(reason(&enc(&map(&[("v", Value::Nil)]))), Reason::WrongType);
}

#[test]
fn check_3_missing_fields_in_order() {
    let order = ["author", "body", "created", "expires", "kind", "sig"];
    for (i, name) in order.iter().enumerate() {
        // remove this one; break every later field's type and add an unknown field: still missing_field
        let mut changes: Vec<(&'static str, Option<Value>)> =
            vec![(name, None), ("zzz", Some(Value::Nil))];
        for later in &order[i + 1..] {
            if *later != "body" {
                changes.push((later, Some(Value::Nil)));
            }
        }
        assert_eq!(reason(&with(&changes)), Reason::MissingField, "{name}");
    }
    // just an empty map with v
    assert_eq!(
        reason(&enc(&map(&[("v", Value::UInt(1))]))),
        Reason::MissingField
    );
}

#[test]
fn check_4_unknown_fields() {
    for extra in ["a", "aaa", "bodz", "sigs", "w", "zzz", "V", ""] {
        // unknown field beats wrong types, unknown kind and bad expiry
        let b = with(&[
            (extra, Some(Value::Nil)),
            ("author", Some(Value::Nil)),
            ("kind", Some(s("nope"))),
            ("expires", Some(Value::UInt(0))),
        ]);
        assert_eq!(reason(&b), Reason::UnknownField, "{extra:?}");
    }
}

#[test]
fn check_5_types_in_order() {
    let bad_author = [
        Value::Nil,
        Value::Bin(vec![1; 31]),
        Value::Bin(vec![1; 33]),
        s(&"a".repeat(32)),
        Value::UInt(1),
    ];
    let bad_time = [
        Value::NInt(-1),
        Value::UInt(1 << 63),
        Value::UInt(u64::MAX),
        s("1"),
        Value::Nil,
        Value::Bool(true),
    ];
    let bad_kind = [Value::Nil, Value::Bin(b"offer".to_vec()), Value::UInt(3)];
    let bad_sig = [
        Value::Nil,
        Value::Bin(vec![0; 63]),
        Value::Bin(vec![0; 65]),
        s(&"a".repeat(64)),
    ];
    for a in &bad_author {
        // author first: with every later field broken too
        let b = with(&[
            ("author", Some(a.clone())),
            ("created", Some(Value::Nil)),
            ("kind", Some(s("nope"))),
            ("sig", Some(Value::Nil)),
        ]);
        assert_eq!(reason(&b), Reason::WrongType, "{a:?}");
    }
    for t in &bad_time {
        let b = with(&[("created", Some(t.clone())), ("kind", Some(s("nope")))]);
        assert_eq!(reason(&b), Reason::WrongType, "created {t:?}");
        let b = with(&[("expires", Some(t.clone())), ("kind", Some(s("nope")))]);
        assert_eq!(reason(&b), Reason::WrongType, "expires {t:?}");
    }
    for k in &bad_kind {
        let b = with(&[("kind", Some(k.clone())), ("expires", Some(Value::UInt(0)))]);
        assert_eq!(reason(&b), Reason::WrongType, "kind {k:?}");
    }
    for sg in &bad_sig {
        let b = with(&[
            ("sig", Some(sg.clone())),
            ("kind", Some(s("nope"))),
            ("expires", Some(Value::UInt(0))),
        ]);
        assert_eq!(reason(&b), Reason::WrongType, "sig {sg:?}");
    }
    // the largest allowed time
    let b = with(&[
        ("created", Some(Value::UInt((1 << 63) - 2))),
        ("expires", Some(Value::UInt((1 << 63) - 1))),
    ]);
    assert!(parse(&b).is_ok());
    // body may be anything
    for body in [
        Value::Nil,
        Value::UInt(5),
        Value::Array(vec![]),
        Value::Bin(vec![]),
    ] {
        assert!(parse(&with(&[("body", Some(body))])).is_ok());
    }
}

#[test]
fn check_6_kind_then_7_expiry() {
    for k in KINDS {
        assert!(parse(&with(&[("kind", Some(s(k)))])).is_ok(), "{k}");
    }
    for k in ["", "Offer", "offers", "offe", "zzz", "accept\0"] {
        // unknown kind beats bad expiry
        let b = with(&[("kind", Some(s(k))), ("expires", Some(Value::UInt(0)))]);
        assert_eq!(reason(&b), Reason::UnknownKind, "{k:?}");
    }
    assert_eq!(
        reason(&with(&[("expires", Some(Value::UInt(1000)))])),
        Reason::BadExpiry
    );
    assert_eq!(
        reason(&with(&[("expires", Some(Value::UInt(999)))])),
        Reason::BadExpiry
    );
    assert_eq!(
        reason(&with(&[("expires", Some(Value::UInt(0)))])),
        Reason::BadExpiry
    );
    assert!(parse(&with(&[("expires", Some(Value::UInt(1001)))])).is_ok());
}

#[test]
fn builders_refuse_what_parse_refuses() {
    let a = Value::Bin(vec![1; 32]);
    let body = Value::Nil;
    let sig = Value::Bin(vec![0; 64]);
    let e = |r: Result<Vec<u8>, _native::reason::Error>| -> Reason {
        r.map(|_| ()).unwrap_err().reason
    };
    let enc_env = |author: Value, created: Value, expires: Value, kind: Value, sig: Value| {
        envelope::encode_envelope(author, Value::Nil, created, expires, kind, sig)
    };
    assert_eq!(
        e(enc_env(
            Value::Bin(vec![1; 31]),
            Value::UInt(1),
            Value::UInt(2),
            s("offer"),
            sig.clone()
        )),
        Reason::WrongType
    );
    assert_eq!(
        e(enc_env(
            a.clone(),
            Value::NInt(-1),
            Value::UInt(2),
            s("offer"),
            sig.clone()
        )),
        Reason::WrongType
    );
    assert_eq!(
        e(enc_env(
            a.clone(),
            Value::UInt(1),
            Value::UInt(1 << 63),
            s("offer"),
            sig.clone()
        )),
        Reason::WrongType
    );
    assert_eq!(
        e(enc_env(
            a.clone(),
            Value::UInt(1),
            Value::UInt(2),
            s("nope"),
            sig.clone()
        )),
        Reason::UnknownKind
    );
    assert_eq!(
        e(enc_env(
            a.clone(),
            Value::UInt(1),
            Value::UInt(2),
            s("offer"),
            Value::Bin(vec![0; 63])
        )),
        Reason::WrongType
    );
    assert_eq!(
        e(enc_env(
            a.clone(),
            Value::UInt(2),
            Value::UInt(2),
            s("offer"),
            sig.clone()
        )),
        Reason::BadExpiry
    );
    assert!(enc_env(
        a.clone(),
        Value::UInt(1),
        Value::UInt(2),
        s("offer"),
        sig.clone()
    )
    .is_ok());
    // too large
    let big = Value::Bin(vec![0; MAX_ENVELOPE_BYTES]);
    assert_eq!(
        e(envelope::encode_envelope(
            a.clone(),
            big.clone(),
            Value::UInt(1),
            Value::UInt(2),
            s("offer"),
            sig.clone()
        )),
        Reason::TooLarge
    );
    assert_eq!(
        e(envelope::signed_bytes(
            a.clone(),
            big,
            Value::UInt(1),
            Value::UInt(2),
            s("offer")
        )),
        Reason::TooLarge
    );
    // signed_bytes checks the fields the same way
    assert_eq!(
        e(envelope::signed_bytes(
            a.clone(),
            body.clone(),
            Value::UInt(2),
            Value::UInt(1),
            s("offer")
        )),
        Reason::BadExpiry
    );
    assert_eq!(
        e(envelope::signed_bytes(
            Value::Nil,
            body.clone(),
            Value::UInt(1),
            Value::UInt(2),
            s("offer")
        )),
        Reason::WrongType
    );
    // a body that is as large as still fits
    let overhead = envelope::encode_envelope(
        a.clone(),
        Value::Bin(vec![]),
        Value::UInt(1),
        Value::UInt(2),
        s("offer"),
        sig.clone(),
    )
    .unwrap()
    .len();
    // the empty body is c4 00; a body this long has a 3-byte header
    let fits = Value::Bin(vec![0; MAX_ENVELOPE_BYTES - overhead - 1]);
    let full = envelope::encode_envelope(
        a.clone(),
        fits,
        Value::UInt(1),
        Value::UInt(2),
        s("offer"),
        sig.clone(),
    )
    .unwrap();
    assert_eq!(full.len(), MAX_ENVELOPE_BYTES);
    assert!(parse(&full).is_ok());
}

#[test]
fn non_canonical_envelopes_are_refused() {
    let good = with(&[]);
    assert!(parse(&good).is_ok());
    // the same map with two keys swapped
    let f = good_fields();
    let mut swapped: Vec<(&[u8], Vec<u8>)> = f
        .iter()
        .map(|(k, v)| {
            let mut kb = Vec::new();
            codec::write_str(&mut kb, k).unwrap();
            (Box::leak(kb.into_boxed_slice()) as &[u8], enc(v))
        })
        .collect();
    swapped.swap(0, 1);
    let entries: Vec<(&[u8], &[u8])> = swapped.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    assert_eq!(reason(&raw_map(&entries)), Reason::NonCanonical);
    // created in a long form
    let pos = good.windows(8).position(|w| w == b"\xa7created").unwrap() + 8;
    assert_eq!(good[pos], 0xcd); // 1000
    let mut long = good.clone();
    long.splice(pos..pos + 3, hex("ce000003e8"));
    assert_eq!(reason(&long), Reason::NonCanonical);
}

/// `framed` (ingest's reading of a remembered duplicate) gives exactly what `parse` gives for every
/// canonical envelope with uint 64 times, and nothing for any other shape: times in fewer bytes, a
/// byte of the framing changed, bytes after it, a truncation.
#[test]
fn framed_reads_what_parse_reads_or_nothing() {
    let sk = signer([7; 32]);
    let mut checked = 0;
    for (k, kind) in KINDS.iter().enumerate() {
        for (created, expires) in [(NOW as u64, NOW as u64 + 60_000), (1 << 32, (1 << 62) + 5)] {
            let data = envelope_with(&sk, body(k as u64), created, expires, kind);
            let (got, want) = (
                envelope::framed(&data).expect("framed"),
                parse(&data).expect("parses"),
            );
            assert_eq!(
                (
                    got.v,
                    got.author,
                    got.body_raw,
                    got.created,
                    got.expires,
                    got.kind,
                    got.sig
                ),
                (
                    want.v,
                    want.author,
                    want.body_raw,
                    want.created,
                    want.expires,
                    want.kind,
                    want.sig
                )
            );
            assert_eq!(
                (got.signed_parts(), got.id()),
                (want.signed_parts(), want.id())
            );
            assert!(got.same_signed_bytes(&want));
            checked += 1;
        }
        // A time in 5, 3, 2 or 1 bytes moves its entry: never read at the uint 64 offsets.
        for (created, expires) in [
            (1000, 2000),
            (70_000, (1 << 32) + 1),
            ((1 << 32) - 1, 1 << 33),
        ] {
            let data = envelope_with(&sk, body(k as u64), created, expires, kind);
            assert!(
                parse(&data).is_ok() && envelope::framed(&data).is_none(),
                "{kind} {created} {expires}"
            );
        }
    }
    assert_eq!(checked, 2 * KINDS.len());
    let data = envelope_signed(&sk, 3);
    let mut longer = data.clone();
    longer.push(0);
    assert!(envelope::framed(&longer).is_none());
    for cut in 0..data.len() {
        assert!(envelope::framed(&data[..cut]).is_none());
    }
    // Every byte of the framing itself: the map header, the keys and the headers of the fixed values.
    let n = data.len();
    let kind_at = n - 73 - (5 + 1 + "offer".len());
    let (expires_at, created_at) = (kind_at - 17, kind_at - 34);
    let framing = (0..10)
        .chain(42..47)
        .chain(created_at..created_at + 9)
        .chain(expires_at..expires_at + 9)
        .chain(kind_at..n - 73)
        .chain(n - 73..n - 67)
        .chain(n - 3..n);
    for i in framing {
        let mut changed = data.clone();
        changed[i] ^= 0x01;
        assert!(envelope::framed(&changed).is_none(), "byte {i}");
    }
}
