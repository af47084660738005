"""Print a pip constraints file pinning every declared dependency to its floor.

pip has no "lowest" resolution, so `make test-lowest` installs with these pins: each requirement of
pyproject.toml ([project] dependencies and the `test` extra) must declare a `>=` floor, and that floor
is what gets installed. A requirement without one is an error, so a new dependency cannot slip in
unproven. Usage: python .ci/lowest_constraints.py [pyproject.toml] > constraints.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*(?:;.*)?$")
_FLOOR = re.compile(r">=\s*([0-9][0-9A-Za-z.+!-]*)")


def floors(pyproject: dict) -> list[tuple[str, str]]:
    project = pyproject["project"]
    requirements = [*project.get("dependencies", ()), *project.get("optional-dependencies", {}).get("test", ())]
    pins = []
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"cannot read requirement {requirement!r}")
        name, specifiers = match.groups()
        floor = _FLOOR.search(specifiers)
        if floor is None:
            raise SystemExit(f"{name}: no >= floor declared in {requirement!r}")
        pins.append((name, floor.group(1)))
    return pins


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "pyproject.toml")
    with path.open("rb") as fh:
        pins = floors(tomllib.load(fh))
    print(f"# lowest allowed versions, generated from {path.name} by .ci/lowest_constraints.py")
    for name, version in pins:
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
