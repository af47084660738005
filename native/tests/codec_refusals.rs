//! Canonical MessagePack subset: every rejection, and PROTOCOL.md's error order.

mod common;

use _native::codec::{decode_uncapped, encode, Value, MAX_ENVELOPE_BYTES};
use _native::reason::Reason;
use common::codec_checks::{ok, reason};
use common::*;

#[test]
fn non_shortest_forms_are_non_canonical() {
    let cases = [
        // uint forms holding a smaller value
        "cc00",
        "cc7f",
        "cd0000",
        "cd00ff",
        "ce00000000",
        "ce0000ffff",
        "cf0000000000000000",
        "cf00000000ffffffff",
        // signed forms holding a value >= 0
        "d000",
        "d07f",
        "d10000",
        "d17fff",
        "d200000000",
        "d27fffffff",
        "d30000000000000000",
        "d37fffffffffffffff",
        // signed forms holding a value that fits a shorter form
        "d0ff",
        "d0e0",
        "d1ffff",
        "d1ffe0",
        "d1ff80",
        "d2ffffffff",
        "d2ffff8000",
        "d3ffffffffffffffff",
        "d3ffffffff80000000",
        // text lengths
        "d900",
        "d91f",
        "da0000",
        "da00ff",
        "db00000000",
        "db0000ffff",
        // bytes lengths (c4 is the shortest form for 0..255)
        "c50000",
        "c500ff",
        "c600000000",
        "c60000ffff",
        // container lengths
        "dc0000",
        "dc000f",
        "dd00000000",
        "dd0000ffff",
        "de0000",
        "de000f",
        "df00000000",
        "df0000ffff",
    ];
    for h in cases {
        assert_eq!(reason(&hex(h)), Reason::NonCanonical, "{h}");
    }
}

#[test]
fn float_ext_and_reserved_are_refused() {
    assert_eq!(reason(&hex("ca3fc00000")), Reason::FloatForbidden);
    assert_eq!(reason(&hex("cb3ff8000000000000")), Reason::FloatForbidden);
    // even truncated: the type byte decides
    assert_eq!(reason(&hex("ca")), Reason::FloatForbidden);
    assert_eq!(reason(&hex("c1")), Reason::Malformed);
    for t in ["c7", "c8", "c9", "d4", "d5", "d6", "d7", "d8"] {
        assert_eq!(
            reason(&hex(&format!("{t}0100000000000000000000000000000000"))),
            Reason::Malformed,
            "{t}"
        );
        assert_eq!(reason(&hex(t)), Reason::Malformed, "{t}");
    }
    // inside containers
    assert_eq!(reason(&hex("9201ca00000000")), Reason::FloatForbidden);
    assert_eq!(
        reason(&hex("81a161cb0000000000000000")),
        Reason::FloatForbidden
    );
    assert_eq!(reason(&hex("9201c1")), Reason::Malformed);
}

#[test]
fn map_key_rules() {
    // unsorted
    assert_eq!(
        reason(&raw_map(&[(b"\xa1b", b"\x01"), (b"\xa1a", b"\x02")])),
        Reason::NonCanonical
    );
    // duplicate
    assert_eq!(
        reason(&raw_map(&[(b"\xa1a", b"\x01"), (b"\xa1a", b"\x02")])),
        Reason::NonCanonical
    );
    // prefix order: "a" < "aa"
    ok(&raw_map(&[(b"\xa1a", b"\x01"), (b"\xa2aa", b"\x02")]));
    assert_eq!(
        reason(&raw_map(&[(b"\xa2aa", b"\x01"), (b"\xa1a", b"\x02")])),
        Reason::NonCanonical
    );
    // byte order, not code point order of a different encoding: "z" (7a) < "é" (c3a9)
    ok(&raw_map(&[(b"\xa1z", b"\x01"), (b"\xa2\xc3\xa9", b"\x02")]));
    // non-text keys
    for key in [
        &b"\x01"[..],
        b"\xc0",
        b"\xc3",
        b"\xc4\x01a",
        b"\x90",
        b"\x80",
        b"\xff",
        b"\xcc\x80",
    ] {
        assert_eq!(
            reason(&raw_map(&[(key, b"\x01")])),
            Reason::NonCanonical,
            "{}",
            hex::encode(key)
        );
    }
    // empty-string key is fine and sorts first
    ok(&raw_map(&[(b"\xa0", b"\x01"), (b"\xa1a", b"\x02")]));
}

#[test]
fn invalid_utf8_is_malformed() {
    for bad in ["a1ff", "a2c3", "a3eda080", "a2c0af", "a4f4908080"] {
        assert_eq!(reason(&hex(bad)), Reason::Malformed, "{bad}");
        // as a key too
        let mut m = vec![0x81];
        m.extend(hex(bad));
        m.push(0x01);
        assert_eq!(reason(&m), Reason::Malformed, "key {bad}");
    }
    ok(&hex("a2c3a9"));
}

fn nest(depth: usize, inner: &[u8]) -> Vec<u8> {
    let mut v = vec![0x91; depth];
    v.extend_from_slice(inner);
    v
}

#[test]
fn depth_limit() {
    // 16 nested arrays holding a scalar: the innermost container is at depth 16.
    ok(&nest(16, &[0x01]));
    ok(&nest(15, &[0x90]));
    ok(&nest(16, &[])
        .into_iter()
        .take(15)
        .chain([0x90])
        .collect::<Vec<u8>>());
    // a container at depth 17
    assert_eq!(reason(&nest(16, &[0x90])), Reason::TooDeep);
    assert_eq!(reason(&nest(17, &[0x01])), Reason::TooDeep);
    assert_eq!(reason(&nest(16, &[0x80])), Reason::TooDeep);
    assert_eq!(reason(&nest(16, &hex("dc0010"))), Reason::TooDeep);
    // maps count too
    let mut m = Vec::new();
    for _ in 0..16 {
        m.extend_from_slice(b"\x81\xa1k");
    }
    m.push(0x01);
    ok(&m);
    let mut m17 = Vec::new();
    for _ in 0..17 {
        m17.extend_from_slice(b"\x81\xa1k");
    }
    m17.push(0x01);
    assert_eq!(reason(&m17), Reason::TooDeep);
    // encode refuses too
    let mut v = Value::Nil;
    for _ in 0..16 {
        v = Value::Array(vec![v]);
    }
    assert!(encode(&v).is_ok());
    let v17 = Value::Array(vec![v.clone()]);
    assert_eq!(encode(&v17).unwrap_err().reason, Reason::TooDeep);
    // a scalar at depth 17 is fine
    assert_eq!(encode(&v).unwrap(), nest(16, &[0xc0]));
}

#[test]
fn trailing_bytes() {
    assert_eq!(reason(&hex("c000")), Reason::TrailingBytes);
    assert_eq!(reason(&hex("9101ff")), Reason::TrailingBytes);
    // whatever the trailing garbage is
    assert_eq!(reason(&hex("01c1")), Reason::TrailingBytes);
    assert_eq!(reason(&hex("01ca")), Reason::TrailingBytes);
    // empty input is a truncated value
    assert_eq!(reason(&[]), Reason::Malformed);
}

#[test]
fn size_cap() {
    // exactly the cap is fine
    let v = Value::Bin(vec![0; MAX_ENVELOPE_BYTES - 3]);
    let b = encode(&v).unwrap();
    assert_eq!(b.len(), MAX_ENVELOPE_BYTES);
    ok(&b);
    // one more byte: too_large, checked before anything is read
    let v = Value::Bin(vec![0; MAX_ENVELOPE_BYTES - 2]);
    let b = encode(&v).unwrap();
    assert_eq!(reason(&b), Reason::TooLarge);
    assert_eq!(
        reason(&vec![0xc1; MAX_ENVELOPE_BYTES + 1]),
        Reason::TooLarge
    );
    assert_eq!(
        reason(&vec![0xca; MAX_ENVELOPE_BYTES + 1]),
        Reason::TooLarge
    );
    // uncapped decode accepts it
    assert!(decode_uncapped(&b).is_ok());
}

#[test]
fn truncation_at_every_position_is_malformed() {
    let sk = signer([9; 32]);
    let env = envelope_signed(&sk, 1);
    ok(&env);
    for cut in 0..env.len() {
        assert_eq!(reason(&env[..cut]), Reason::Malformed, "cut at {cut}");
    }
    // and of a value with every kind of item
    let v = map(&[
        ("a", Value::UInt(u64::MAX)),
        ("b", Value::NInt(i64::MIN)),
        ("c", s(&"x".repeat(300))),
        ("d", Value::Bin(vec![1; 300])),
        ("e", Value::Array(vec![Value::UInt(70000); 20])),
        ("f", Value::NInt(-40000)),
    ]);
    let b = enc(&v);
    for cut in 0..b.len() {
        assert_eq!(reason(&b[..cut]), Reason::Malformed, "cut at {cut}");
    }
}

#[test]
fn claimed_lengths_do_not_allocate() {
    // Huge claimed counts with little data: refused quickly as truncated, no big allocation.
    for h in [
        "ddffffffff",
        "dfffffffff",
        "c6ffffffff",
        "dbffffffff",
        "dcffff",
        "deffff",
    ] {
        let mut b = hex(h);
        b.extend(vec![0xc0; 1000]);
        let r = reason(&b);
        assert!(
            r == Reason::Malformed || r == Reason::NonCanonical,
            "{h}: {r:?}"
        );
    }
    // A 64 KiB input of nested 32-bit-count arrays: depth stops it.
    let mut b = Vec::new();
    while b.len() + 5 <= MAX_ENVELOPE_BYTES {
        b.extend(hex("ddffffffff"));
    }
    assert_eq!(reason(&b), Reason::TooDeep);
}

// -- the order of errors (PROTOCOL.md section 1) ------------------------------------------------

#[test]
fn order_first_problem_wins_left_to_right() {
    // earlier items decide
    assert_eq!(reason(&hex("92c1ca")), Reason::Malformed);
    assert_eq!(reason(&hex("92ca00000000c1")), Reason::FloatForbidden);
    assert_eq!(reason(&hex("92cc01c1")), Reason::NonCanonical);
    assert_eq!(reason(&hex("92c1cc01")), Reason::Malformed);
    // a value error beats trailing bytes (the value is not finished)
    assert_eq!(reason(&hex("92c0")), Reason::Malformed);
    assert_eq!(reason(&hex("91ca0000000000")), Reason::FloatForbidden);
}

#[test]
fn order_type_byte_before_length() {
    // a container at depth 17 whose length is truncated or non-canonical: too_deep (type byte first)
    assert_eq!(reason(&nest(16, &hex("dc"))), Reason::TooDeep);
    assert_eq!(reason(&nest(16, &hex("dc0001"))), Reason::TooDeep);
    assert_eq!(reason(&nest(16, &hex("de"))), Reason::TooDeep);
    // floats and forbidden types at any depth are decided by the type byte
    assert_eq!(reason(&nest(16, &hex("ca"))), Reason::FloatForbidden);
    assert_eq!(reason(&nest(16, &hex("c1"))), Reason::Malformed);
}

#[test]
fn order_length_before_content() {
    // truncated length -> malformed
    assert_eq!(reason(&hex("cd01")), Reason::Malformed);
    assert_eq!(reason(&hex("d9")), Reason::Malformed);
    assert_eq!(reason(&hex("dc00")), Reason::Malformed);
    // a non-shortest length with truncated content: non_canonical (length is read first)
    assert_eq!(reason(&hex("d9056162")), Reason::NonCanonical);
    assert_eq!(reason(&hex("c5000101")), Reason::NonCanonical);
    // a non-shortest length with invalid UTF-8 content: non_canonical
    assert_eq!(reason(&hex("d901ff")), Reason::NonCanonical);
    // shortest length, content truncated -> malformed; content invalid -> malformed
    assert_eq!(reason(&hex("a56162")), Reason::Malformed);
    assert_eq!(reason(&hex("c40501")), Reason::Malformed);
    // truncated content that would also be invalid UTF-8: malformed either way
    assert_eq!(reason(&hex("a3ff")), Reason::Malformed);
    // a non-shortest container length with missing items: non_canonical
    assert_eq!(reason(&hex("dc0001")), Reason::NonCanonical);
}

#[test]
fn order_map_key_then_order_then_value() {
    // problems inside the key come first: a float key is float_forbidden, not non_canonical
    assert_eq!(reason(&hex("81ca0000000001")), Reason::FloatForbidden);
    // a key container with a bad item inside: that item's reason
    assert_eq!(reason(&hex("8191c101")), Reason::Malformed);
    assert_eq!(reason(&hex("8191cc0101")), Reason::NonCanonical);
    assert_eq!(reason(&hex("8191ca0000000001")), Reason::FloatForbidden);
    // a truncated non-text key: malformed (decoded as a value first)
    assert_eq!(reason(&hex("81cd00")), Reason::Malformed);
    // a well-formed non-text key: non_canonical, even if the value would be worse
    assert_eq!(reason(&hex("8101ca00000000")), Reason::NonCanonical);
    assert_eq!(reason(&hex("8101c1")), Reason::NonCanonical);
    // a key container nested too deep inside a key: too_deep from inside the key
    let mut k = nest(15, &[]);
    k.insert(0, 0x81);
    k.extend(hex("9101"));
    assert_eq!(reason(&k), Reason::TooDeep);
    // key order is checked before the value: unsorted key with a float value
    assert_eq!(reason(&hex("82a16201a161ca00000000")), Reason::NonCanonical);
    // an invalid UTF-8 second key beats the order check
    assert_eq!(reason(&hex("82a16201a1ff01")), Reason::Malformed);
    // then the value
    assert_eq!(
        reason(&hex("82a161ca00000000a16201")),
        Reason::FloatForbidden
    );
    assert_eq!(reason(&hex("82a16101a162cc01")), Reason::NonCanonical);
    // non-text key check happens after the key's own decode but before the order check
    assert_eq!(reason(&hex("82a1620101")), Reason::NonCanonical);
}

#[test]
fn order_size_cap_first() {
    let mut b = hex("c1");
    b.resize(MAX_ENVELOPE_BYTES + 1, 0);
    assert_eq!(reason(&b), Reason::TooLarge);
}
