//! The codec checks shared by codec.rs and codec_refusals.rs: decode and validate must agree,
//! and whatever decodes re-encodes to the same bytes.

use _native::codec::{decode, encode, validate, Value};
use _native::reason::Reason;

pub fn reason(data: &[u8]) -> Reason {
    let r = decode(data).expect_err("should be refused").reason;
    // The validating (non-building) pass must agree.
    assert_eq!(
        validate(data).expect_err("validate should refuse").reason,
        r,
        "validate vs decode on {}",
        hex::encode(data)
    );
    r
}

pub fn ok(data: &[u8]) -> Value {
    let v = decode(data).unwrap_or_else(|e| panic!("{} refused: {e}", hex::encode(data)));
    validate(data).expect("validate agrees");
    // Canonical: re-encoding gives the same bytes.
    assert_eq!(
        encode(&v).unwrap(),
        data,
        "re-encode of {}",
        hex::encode(data)
    );
    v
}
