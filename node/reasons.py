"""Reason codes: why an envelope (or a canonical value) was refused.

The numbers are part of the wire protocol (PROTOCOL.md, "Reason codes"): the native core returns them
as one byte per item, peers send them back for every rejected envelope, and both implementations must
give the same code for the same input. Append new codes; never renumber.
"""

from __future__ import annotations

import enum


class Reason(enum.IntEnum):
    OK = 0
    MALFORMED = 1
    NON_CANONICAL = 2
    FLOAT_FORBIDDEN = 3
    TRAILING_BYTES = 4
    TOO_DEEP = 5
    TOO_LARGE = 6
    WRONG_TYPE = 7
    MISSING_FIELD = 8
    UNKNOWN_FIELD = 9
    UNSUPPORTED_VERSION = 10
    UNKNOWN_KIND = 11
    BAD_EXPIRY = 12
    NOT_YET_VALID = 13
    EXPIRED = 14
    BAD_KEY = 15
    BAD_SIGNATURE = 16

    @property
    def label(self) -> str:
        """The name used on the wire and in messages: ``bad_signature``."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: int | str | Reason) -> Reason:
        if isinstance(value, str):
            return cls[value.upper()]
        return cls(value)
