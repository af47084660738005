"""Money as people type it (``349.00USD``, ``349 usd``, ``USD 12.5``) ↔ integer minor units + currency.

Money is never a float: ``349.00USD`` is 34900 cents. The number of decimals follows ISO 4217, so
``1200JPY`` is 1200 yen and ``1.5JPY`` is refused rather than rounded.
"""

from __future__ import annotations

import re

from node.errors import ValidationError

_MONEY = re.compile(
    r"(?:(?P<pre>[A-Za-z]{3}) *)?(?P<units>[0-9]+)(?:\.(?P<frac>[0-9]+))?(?: *(?P<post>[A-Za-z]{3}))?"
)
# ISO 4217 currencies whose minor unit is not the cent; every other code has two decimals.
_DECIMALS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV",
         "XAF", "XOF", "XPF"),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}  # fmt: skip


def decimals(currency: str) -> int:
    return _DECIMALS.get(currency, 2)


def parse_money(text: str) -> tuple[int, str]:
    """``"349.00USD"`` → ``(34900, "USD")``; ValidationError with an example for anything else."""
    match = _MONEY.fullmatch(text.strip())
    if match is None or bool(match["pre"]) == bool(match["post"]):
        raise ValidationError(
            "price", f"{text!r} is not an amount with its currency, such as 349.00USD or 1200JPY"
        )
    currency = (match["pre"] or match["post"]).upper()
    places = decimals(currency)
    fraction = match["frac"] or ""
    if len(fraction.rstrip("0")) > places:
        raise ValidationError("price", f"{text!r} has more decimals than {currency} allows ({places})")
    fraction = fraction[:places].ljust(places, "0")
    return int(match["units"]) * 10**places + int(fraction or "0"), currency


def format_money(minor: int, currency: str) -> str:
    """``(34900, "USD")`` → ``"349.00 USD"``."""
    places = decimals(currency)
    if places == 0:
        return f"{minor} {currency}"
    units, fraction = divmod(minor, 10**places)
    return f"{units}.{fraction:0{places}d} {currency}"
