"""Reading a submitted form: each refusal is a ValidationError naming the input, as ops name arguments."""

from __future__ import annotations

import math
import re

from starlette.datastructures import FormData

from node.errors import ValidationError

_MONEY = re.compile(r"\s*(\d{1,12})(?:[.,](\d{1,2}))?\s*")


def refused(name: str, message: str) -> ValidationError:
    return ValidationError(name, message)


def text(form: FormData, name: str, default: str | None = None) -> str:
    value = form.get(name)
    if value is None or (isinstance(value, str) and not value.strip() and default is not None):
        if default is None:
            raise refused(name, "is required")
        return default
    if not isinstance(value, str):
        raise refused(name, "must be text")
    if not value.strip() and default is None:
        raise refused(name, "is required")
    return value


def integer(form: FormData, name: str) -> int:
    raw = text(form, name).strip()
    if not re.fullmatch(r"-?\d{1,18}", raw):
        raise refused(name, "must be a whole number")
    return int(raw)


def optional_integer(form: FormData, name: str) -> int | None:
    raw = str(form.get(name) or "").strip()
    return None if not raw else integer(form, name)


def optional_number(form: FormData, name: str) -> float | None:
    raw = str(form.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise refused(name, "must be a number") from None
    if not math.isfinite(value) or value <= 0 or value > 100_000:
        raise refused(name, "must be a positive number")
    return value


def money(form: FormData, name: str) -> int:
    """``"349"``, ``"349.5"`` or ``"349,50"`` in major units → minor units."""
    match = _MONEY.fullmatch(text(form, name))
    if match is None:
        raise refused(name, "give an amount such as 349 or 349.50")
    return int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))
