"""The CHECK fragments the migrations of node.schema_records, schema_federation and schema_access share.

They are part of shipped migrations' text: never change one (add a new fragment instead).
"""

from __future__ import annotations

_NONBLANK = "length(trim({0})) > 0"
# a lowercase hex id or key of 32 bytes
_HEX64 = "length({0}) = 64 AND NOT {0} GLOB '*[^0-9a-f]*'"
_JSON_LIST = "json_valid({0}) AND json_type({0}) = 'array'"
_OPTIONAL_HEX64 = "{0} IS NULL OR (" + _HEX64 + ")"
