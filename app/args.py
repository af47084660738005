"""The arguments of an op: typed access, every refusal a ValidationError naming the argument."""

from __future__ import annotations

from typing import Any

from node.errors import IdentityError, ValidationError
from node.nodeid import parse_node_key


class Args:
    """Typed access to an op's arguments; every refusal is ValidationError naming the argument."""

    def __init__(self, op: str, args: dict[str, Any], allowed: tuple[str, ...]) -> None:
        if not isinstance(args, dict):
            raise ValidationError("args", f"{op} takes an object of arguments")
        unknown = sorted(set(args) - set(allowed))
        if unknown:
            takes = ", ".join(allowed) or "none"
            raise ValidationError(unknown[0], f"{op} takes no argument {unknown[0]!r} (it takes {takes})")
        self._args = args

    def text(self, name: str, default: str | None = None) -> str:
        value = self._args.get(name)
        if value is None:
            value = default
        if not isinstance(value, str):
            raise ValidationError(name, "must be text")
        return value

    def optional_text(self, name: str) -> str | None:
        value = self._args.get(name)
        if value is not None and not isinstance(value, str):
            raise ValidationError(name, "must be text or null")
        return value

    def integer(self, name: str, default: int | None = None) -> int:
        value = self._args.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(name, "must be an integer")
        return value

    def ref(self, name: str = "ref") -> str:
        """An id, prefix or number, given as text or integer."""
        value = self._args.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(name, "must name the record (its id or number)")
        return value.strip()

    def strings(self, name: str) -> list[str]:
        value = self._args.get(name, [])
        if isinstance(value, str):
            return [value] if value else []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError(name, "must be a list of text")
        return value

    def optional_strings(self, name: str) -> list[str] | None:
        return None if self._args.get(name) is None else self.strings(name)

    def optional_integer(self, name: str) -> int | None:
        return None if self._args.get(name) is None else self.integer(name)

    def flag(self, name: str) -> bool:
        value = self._args.get(name, False)
        if not isinstance(value, bool):
            raise ValidationError(name, "must be true or false")
        return value

    def node_key(self, name: str) -> bytes:
        """A node named by its node id (``vrm1…``) or its 64-hex public key."""
        value = self._args.get(name)
        try:
            return parse_node_key(value if isinstance(value, str) else "")
        except IdentityError:
            raise ValidationError(name, f"{value!r} is not a node id (vrm1…)") from None
