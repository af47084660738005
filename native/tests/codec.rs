//! Canonical MessagePack subset: exact encodings, round trips and the canonical property.
//! The refusals and PROTOCOL.md's error order are in codec_refusals.rs.

mod common;

use _native::codec::{self, decode, decode_uncapped, encode, validate, Value};
use _native::reason::Reason;
use common::codec_checks::ok;
use common::*;

fn roundtrip(v: Value, expect_hex: &str) {
    let bytes = encode(&v).unwrap();
    assert_eq!(hex::encode(&bytes), expect_hex, "{v:?}");
    assert_eq!(decode(&bytes).unwrap(), v);
}

#[test]
fn scalars_roundtrip_with_exact_encodings() {
    roundtrip(Value::Nil, "c0");
    roundtrip(Value::Bool(false), "c2");
    roundtrip(Value::Bool(true), "c3");
    let uints: &[(u64, &str)] = &[
        (0, "00"),
        (127, "7f"),
        (128, "cc80"),
        (255, "ccff"),
        (256, "cd0100"),
        (65535, "cdffff"),
        (65536, "ce00010000"),
        (0xffff_ffff, "ceffffffff"),
        (0x1_0000_0000, "cf0000000100000000"),
        (u64::MAX, "cfffffffffffffffff"),
    ];
    for (v, h) in uints {
        roundtrip(Value::UInt(*v), h);
    }
    let nints: &[(i64, &str)] = &[
        (-1, "ff"),
        (-32, "e0"),
        (-33, "d0df"),
        (-128, "d080"),
        (-129, "d1ff7f"),
        (-32768, "d18000"),
        (-32769, "d2ffff7fff"),
        (-2_147_483_648, "d280000000"),
        (-2_147_483_649, "d3ffffffff7fffffff"),
        (i64::MIN, "d38000000000000000"),
    ];
    for (v, h) in nints {
        roundtrip(Value::NInt(*v), h);
        assert_eq!(Value::int(*v), Value::NInt(*v));
    }
    assert_eq!(Value::int(5), Value::UInt(5));
}

#[test]
fn lengths_roundtrip_at_every_boundary() {
    for (n, head) in [
        (0usize, "a0"),
        (31, "bf"),
        (32, "d920"),
        (255, "d9ff"),
        (256, "da0100"),
        (65535, "daffff"),
        (65536, "db00010000"),
    ] {
        let v = Value::Str("x".repeat(n));
        let b = encode(&v).unwrap();
        assert!(hex::encode(&b).starts_with(head), "str {n}");
        assert_eq!(decode_uncapped(&b).unwrap(), v);
    }
    for (n, head) in [
        (0usize, "c400"),
        (255, "c4ff"),
        (256, "c50100"),
        (65535, "c5ffff"),
        (65536, "c600010000"),
    ] {
        let v = Value::Bin(vec![7; n]);
        let b = encode(&v).unwrap();
        assert!(hex::encode(&b).starts_with(head), "bin {n}");
        assert_eq!(decode_uncapped(&b).unwrap(), v);
    }
    for (n, head) in [
        (0usize, "90"),
        (15, "9f"),
        (16, "dc0010"),
        (65535, "dcffff"),
        (65536, "dd00010000"),
    ] {
        let v = Value::Array(vec![Value::Nil; n]);
        let b = encode(&v).unwrap();
        assert!(hex::encode(&b).starts_with(head), "array {n}");
        assert_eq!(decode_uncapped(&b).unwrap(), v);
    }
    for (n, head) in [
        (0usize, "80"),
        (15, "8f"),
        (16, "de0010"),
        (65536, "df00010000"),
    ] {
        let v = Value::Map(
            (0..n)
                .map(|i| (format!("k{i:06}"), Value::UInt(i as u64)))
                .collect(),
        );
        let b = encode(&v).unwrap();
        assert!(hex::encode(&b).starts_with(head), "map {n}");
        assert_eq!(decode_uncapped(&b).unwrap(), v);
    }
}

#[test]
fn maps_are_sorted_by_utf8_bytes() {
    let v = map(&[
        ("b", Value::UInt(1)),
        ("aa", Value::UInt(2)),
        ("a", Value::UInt(3)),
        ("Z", Value::Nil),
        ("é", Value::Nil),
        ("z", Value::Nil),
    ]);
    let b = encode(&v).unwrap();
    // Z (5a) < a < aa < b < z < é (c3 a9)
    assert_eq!(
        hex::encode(&b),
        "86a15ac0a16103a2616102a16201a17ac0a2c3a9c0"
    );
    match decode(&b).unwrap() {
        Value::Map(entries) => {
            let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys, ["Z", "a", "aa", "b", "z", "é"]);
        }
        other => panic!("{other:?}"),
    }
    // Duplicate keys cannot be encoded.
    let dup = Value::Map(vec![("a".into(), Value::Nil), ("a".into(), Value::Nil)]);
    assert_eq!(encode(&dup).unwrap_err().reason, Reason::NonCanonical);
}

#[test]
fn nested_values_roundtrip() {
    let v = map(&[
        (
            "list",
            Value::Array(vec![
                Value::UInt(1),
                s("two"),
                Value::Bin(vec![3]),
                Value::Array(vec![]),
                map(&[]),
            ]),
        ),
        (
            "m",
            map(&[("x", Value::NInt(-200)), ("y", Value::Bool(false))]),
        ),
    ]);
    let b = encode(&v).unwrap();
    assert_eq!(ok(&b), v);
}

/// Random byte strings and mutations of valid encodings: never a panic; decode and validate agree;
/// whatever decodes re-encodes to exactly the same bytes (one value, one encoding).
#[test]
fn fuzz_canonical_property() {
    let mut rng = Rng::new(7);
    let sk = signer([3; 32]);
    let seeds: Vec<Vec<u8>> = vec![
        envelope_signed(&sk, 5),
        enc(&map(&[
            (
                "a",
                Value::Array(vec![Value::UInt(300), Value::NInt(-300), s("hi")]),
            ),
            ("b", Value::Bin(vec![0; 20])),
        ])),
        hex("93cd0100d1ff7fa3616263"),
    ];
    let mut decoded = 0;
    for round in 0..60_000 {
        let data: Vec<u8> = if round % 3 == 0 {
            let n = rng.below(24);
            rng.vec(n)
        } else {
            let mut d = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(d.len());
                match rng.below(4) {
                    0 => d[i] = rng.next_u64() as u8,
                    1 => d[i] ^= 1 << rng.below(8),
                    2 => {
                        d.remove(i);
                        if d.is_empty() {
                            d.push(0);
                        }
                    }
                    _ => d.insert(i, rng.next_u64() as u8),
                }
            }
            d
        };
        let a = decode(&data);
        let b = validate(&data);
        match (&a, &b) {
            (Ok(v), Ok(())) => {
                decoded += 1;
                assert_eq!(
                    encode(v).unwrap(),
                    data,
                    "not canonical: {}",
                    hex::encode(&data)
                );
            }
            (Err(e1), Err(e2)) => assert_eq!(e1, e2, "{}", hex::encode(&data)),
            _ => panic!("decode and validate disagree on {}", hex::encode(&data)),
        }
    }
    assert!(decoded > 100, "fuzz decoded only {decoded}");
}

#[test]
fn writer_helpers_match_encode() {
    let mut out = Vec::new();
    codec::write_nint(&mut out, 5);
    assert_eq!(out, [5]);
    let mut out = Vec::new();
    codec::write_str(&mut out, "abc").unwrap();
    assert_eq!(out, hex("a3616263"));
}
