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


_LITERALS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`", re.DOTALL)
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_WRITE_CLAUSES = re.compile(r"\b(CREATE|MERGE|DELETE|DETACH|SET|REMOVE|DROP|FOREACH|LOAD\s+CSV)\b", re.IGNORECASE)
_WRITE_PROCEDURES = re.compile(r"\bCALL\s+(?:db\.idx\.[\w.]*|apoc\.[\w.]+|dbms\.[\w.]+|db\.(?:create|drop)\w*)",
                               re.IGNORECASE)
_READ_PROCEDURES = re.compile(r"^db\.idx\.(?:fulltext\.queryNodes|fulltext\.queryRelationships|vector\.query\w*)$",
                              re.IGNORECASE)


def assert_read_only(cypher: str) -> None:
    """Refuse write clauses and write procedures before the database is asked (its own refusal comes second)."""
    from ...errors import BadRequest

    code = _COMMENTS.sub(" ", _LITERALS.sub("''", cypher))
    clause = _WRITE_CLAUSES.search(code)
    if clause:
        raise BadRequest(f"/graph/query is read-only: '{clause.group(1).upper()}' is not allowed.",
                         code="bad_request")
    for match in _WRITE_PROCEDURES.finditer(code):
        procedure = match.group(0).split(None, 1)[1]
        if not _READ_PROCEDURES.match(procedure):
            raise BadRequest(f"/graph/query is read-only: procedure '{procedure}' is not allowed.")
