"""Names that reach Cypher: labels, relation types and property keys.

They are validated as Unicode identifiers (letters of any script, digits and
`_`, not starting with a digit: `人物` and `創立` are fine) and backtick-quoted;
anything else is refused and never formatted into a query.
"""

from __future__ import annotations

import re

from ...errors import Unprocessable

IDENTIFIER = re.compile(r"^[^\W\d]\w{0,63}$")
RESERVED_KEYS = frozenset({"id", "tenant", "type", "name", "sources"})


def is_identifier(name: str) -> bool:
    return bool(IDENTIFIER.match(name)) and name.isidentifier()


def check_identifier(name: str) -> str:
    if not is_identifier(name):
        raise ValueError(f"{name!r} is not an identifier (letters, digits or _, not starting with a digit, "
                         "at most 64 characters)")
    return name


def quote(name: str) -> str:
    """Backtick-quote a validated identifier for Cypher."""
    if not is_identifier(name):
        raise Unprocessable(f"{name!r} is not a valid label, relation type or property key.")
    return f"`{name}`"
