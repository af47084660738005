"""RFC 9651 structured field values in the small object shape the signature code uses.

http-sf parses to plain tuples (``(value, params)``, ``([items], params)``); the RFC 9421 code reads
clearer with an ``Item`` (``.value``, ``.params``), an ``InnerList`` (a list of Items with ``.params``)
and a ``Dictionary`` that parses and prints itself. Parsing and serialising are http-sf's own.
"""

from __future__ import annotations

from typing import Any

import http_sf


class Item:
    """A bare item with parameters; ``str()`` is its serialisation."""

    __slots__ = ("value", "params")

    def __init__(self, value: Any, params: dict[str, Any] | None = None) -> None:
        self.value = value
        self.params = dict(params or {})

    def native(self) -> tuple[Any, dict[str, Any]]:
        return (self.value, self.params)

    def __str__(self) -> str:
        return http_sf.ser(self.native())

    def __repr__(self) -> str:
        return f"Item({self.value!r}, {self.params!r})"


def _item(value: Any) -> Item:
    return value if isinstance(value, Item) else Item(value)


class InnerList(list):
    """An inner list: Items (bare values appended become Items) and the list's own parameters."""

    def __init__(self, items: Any = (), params: dict[str, Any] | None = None) -> None:
        super().__init__(_item(v) for v in items)
        self.params = dict(params or {})

    def append(self, value: Any) -> None:
        super().append(_item(value))

    def native(self) -> tuple[list[tuple[Any, dict[str, Any]]], dict[str, Any]]:
        return ([item.native() for item in self], self.params)

    def __str__(self) -> str:
        return http_sf.ser([self.native()])  # a one-member list prints as the member alone


def _from_native(member: Any) -> Item | InnerList:
    value, params = member
    if isinstance(value, list):
        return InnerList([Item(v, p) for v, p in value], params)
    return Item(value, params)


class Dictionary(dict):
    """A structured dictionary: ``parse(bytes)`` fills it (raising on anything malformed), ``str()``
    serialises it; members may be given as Items, InnerLists or bare values."""

    def parse(self, data: bytes) -> None:
        parsed = http_sf.parse(data, tltype="dictionary")
        self.clear()
        for name, member in parsed.items():
            self[name] = _from_native(member)

    def __str__(self) -> str:
        members = {name: (m if isinstance(m, InnerList) else _item(m)).native() for name, m in self.items()}
        return http_sf.ser(members)
