//! Reason codes (PROTOCOL.md section 3) and the one error type of the native core.
//!
//! The numbers are identical to `node/reasons.py`; they are part of the wire protocol.

use core::fmt;

/// Why an envelope or a canonical value was refused. `#[repr(u8)]`: the code is the wire byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Reason {
    Ok = 0,
    Malformed = 1,
    NonCanonical = 2,
    FloatForbidden = 3,
    TrailingBytes = 4,
    TooDeep = 5,
    TooLarge = 6,
    WrongType = 7,
    MissingField = 8,
    UnknownField = 9,
    UnsupportedVersion = 10,
    UnknownKind = 11,
    BadExpiry = 12,
    NotYetValid = 13,
    Expired = 14,
    BadKey = 15,
    BadSignature = 16,
    // 17..29: judged by a node after verification (node/reasons.py); the native core gives only
    // Duplicate (ingest's recent-id set and repeats in a batch) and InvalidBody (intent bodies).
    Duplicate = 17,
    RateLimited = 18,
    InvalidBody = 19,
    UnknownIntent = 20,
    Withdrawn = 21,
    Blocked = 22,
    WrongAuthor = 23,
    NotForRole = 24,
    NoGrant = 25,
    NotGrantee = 26,
    Revoked = 27,
    OutOfScope = 28,
    BudgetSpent = 29,
    /// expires - created beyond the kind's maximum lifetime (`envelope::max_lifetime_ms`).
    TooLongLived = 30,
    // 31..33: judged by a node (admission, offers); the native core never gives them, but knows them
    // so a code read from the wire maps to its label on both sides.
    Busy = 31,
    PowRequired = 32,
    TermsNotAgreed = 33,
}

impl Reason {
    /// Every reason, indexed by its code.
    pub const ALL: [Reason; 34] = [
        Reason::Ok,
        Reason::Malformed,
        Reason::NonCanonical,
        Reason::FloatForbidden,
        Reason::TrailingBytes,
        Reason::TooDeep,
        Reason::TooLarge,
        Reason::WrongType,
        Reason::MissingField,
        Reason::UnknownField,
        Reason::UnsupportedVersion,
        Reason::UnknownKind,
        Reason::BadExpiry,
        Reason::NotYetValid,
        Reason::Expired,
        Reason::BadKey,
        Reason::BadSignature,
        Reason::Duplicate,
        Reason::RateLimited,
        Reason::InvalidBody,
        Reason::UnknownIntent,
        Reason::Withdrawn,
        Reason::Blocked,
        Reason::WrongAuthor,
        Reason::NotForRole,
        Reason::NoGrant,
        Reason::NotGrantee,
        Reason::Revoked,
        Reason::OutOfScope,
        Reason::BudgetSpent,
        Reason::TooLongLived,
        Reason::Busy,
        Reason::PowRequired,
        Reason::TermsNotAgreed,
    ];

    #[inline]
    pub const fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Reason> {
        Reason::ALL.get(usize::from(code)).copied()
    }

    /// The wire label, as `Reason.label` in Python: `bad_signature`.
    pub const fn label(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::Malformed => "malformed",
            Reason::NonCanonical => "non_canonical",
            Reason::FloatForbidden => "float_forbidden",
            Reason::TrailingBytes => "trailing_bytes",
            Reason::TooDeep => "too_deep",
            Reason::TooLarge => "too_large",
            Reason::WrongType => "wrong_type",
            Reason::MissingField => "missing_field",
            Reason::UnknownField => "unknown_field",
            Reason::UnsupportedVersion => "unsupported_version",
            Reason::UnknownKind => "unknown_kind",
            Reason::BadExpiry => "bad_expiry",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Expired => "expired",
            Reason::BadKey => "bad_key",
            Reason::BadSignature => "bad_signature",
            Reason::Duplicate => "duplicate",
            Reason::RateLimited => "rate_limited",
            Reason::InvalidBody => "invalid_body",
            Reason::UnknownIntent => "unknown_intent",
            Reason::Withdrawn => "withdrawn",
            Reason::Blocked => "blocked",
            Reason::WrongAuthor => "wrong_author",
            Reason::NotForRole => "not_for_role",
            Reason::NoGrant => "no_grant",
            Reason::NotGrantee => "not_grantee",
            Reason::Revoked => "revoked",
            Reason::OutOfScope => "out_of_scope",
            Reason::BudgetSpent => "budget_spent",
            Reason::TooLongLived => "too_long_lived",
            Reason::Busy => "busy",
            Reason::PowRequired => "pow_required",
            Reason::TermsNotAgreed => "terms_not_agreed",
        }
    }
}

/// The one error type: a reason, a short static description, and where (byte offset) if known.
/// `Copy` and allocation-free, so the verification hot path can produce it cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub reason: Reason,
    pub what: &'static str,
    pub at: Option<usize>,
}

impl Error {
    #[inline]
    pub const fn new(reason: Reason, what: &'static str) -> Error {
        Error {
            reason,
            what,
            at: None,
        }
    }

    #[inline]
    pub const fn at(reason: Reason, what: &'static str, at: usize) -> Error {
        Error {
            reason,
            what,
            at: Some(at),
        }
    }

    /// The human-readable detail passed to Python's `EnvelopeError(reason, detail)`.
    pub fn detail(&self) -> String {
        match self.at {
            Some(pos) => format!("{} at byte {}", self.what, pos),
            None => self.what.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.label(), self.detail())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_python_numbers() {
        // node/reasons.py, in order.
        let labels = [
            "ok",
            "malformed",
            "non_canonical",
            "float_forbidden",
            "trailing_bytes",
            "too_deep",
            "too_large",
            "wrong_type",
            "missing_field",
            "unknown_field",
            "unsupported_version",
            "unknown_kind",
            "bad_expiry",
            "not_yet_valid",
            "expired",
            "bad_key",
            "bad_signature",
            "duplicate",
            "rate_limited",
            "invalid_body",
            "unknown_intent",
            "withdrawn",
            "blocked",
            "wrong_author",
            "not_for_role",
            "no_grant",
            "not_grantee",
            "revoked",
            "out_of_scope",
            "budget_spent",
            "too_long_lived",
            "busy",
            "pow_required",
            "terms_not_agreed",
        ];
        for (i, label) in labels.iter().enumerate() {
            let r = Reason::from_code(i as u8).unwrap();
            assert_eq!(r.code() as usize, i);
            assert_eq!(r.label(), *label);
        }
        assert_eq!(Reason::from_code(34), None);
        assert_eq!(Reason::BadSignature as u8, 16);
    }

    #[test]
    fn detail_format() {
        assert_eq!(
            Error::at(Reason::Malformed, "truncated", 3).detail(),
            "truncated at byte 3"
        );
        assert_eq!(
            Error::new(Reason::Malformed, "x").to_string(),
            "malformed: x"
        );
    }
}
