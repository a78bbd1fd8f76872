"""What a caller's text may become inside Cypher, and what a raw query may do.

Labels and relation types are Unicode identifiers (letters of any script,
digits and `_`, not starting with a digit, at most 64 characters: `人物`,
`創立` and `WORKS_AT` are fine; the models turn `Job Title` into `Job_Title`).
Property keys may be any name safe to backtick-quote (`job title`,
`start-date`: see `models.graph.is_safe_name`). Any of these reaches Cypher
text only through `quote`; every value, and the property maps the stores
write, travel as query parameters, never as text.

`assert_read_only` is the first line in front of `/graph/query`; the second is
the database's own read-only mode (GRAPH.RO_QUERY, READ transactions).
"""

from __future__ import annotations

import re

from ...errors import BadRequest, Unprocessable
from ...models.graph import MAX_IDENTIFIER, RESERVED_KEYS, check_identifier, is_identifier, is_safe_name

__all__ = [
    "MAX_IDENTIFIER",
    "RESERVED_KEYS",
    "assert_read_only",
    "check_identifier",
    "check_tenant",
    "is_identifier",
    "is_safe_name",
    "quote",
]

TENANT = re.compile(r"[A-Za-z0-9_-]{1,64}")


def quote(name: str) -> str:
    """Backtick-quote a label, relation type or property key, validating it again (`is_safe_name`: no
    backtick, no control character or line break, at most 64 characters), so nothing can end the quote."""
    if not is_safe_name(name):
        raise Unprocessable(f"{name!r} is not a valid label, relation type or property key.")
    return f"`{name}`"


def check_tenant(tenant: str) -> str:
    if not TENANT.fullmatch(tenant):
        raise BadRequest(f"Invalid tenant {tenant!r}: use 1-64 letters, digits, '_' or '-'.")
    return tenant


# --- the read-only pre-check ---------------------------------------------------------------------

_TOKENS = re.compile(
    r"""
    (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<name>`(?:[^`]|``)*`)
""",
    re.VERBOSE | re.DOTALL,
)

# A keyword right after `.`, `$` or `:` is a property, parameter or label name, not a clause.
_FORBIDDEN_CLAUSES = re.compile(
    r"(?<![.$:\w])\b(CREATE|MERGE|DELETE|DETACH|SET|REMOVE|DROP|FOREACH|LOAD\s+CSV|INSERT|USE|"
    r"GRANT|DENY|REVOKE|ALTER|RENAME|TERMINATE|SHOW|START|STOP|ENABLE|SUSPEND)\b",
    re.IGNORECASE,
)
_CALL = re.compile(r"\bCALL\s+([\w.]+)", re.IGNORECASE)
# An allow-list: the schema listings and the index queries of both databases, nothing else
# (no apoc.*, dbms.*, gds.*, no procedure that writes, loads or reaches the network).
_ALLOWED_PROCEDURES = re.compile(
    r"db\.(?:labels|relationshipTypes|propertyKeys)"
    r"|db\.(?:idx|index)\.(?:fulltext|vector)\.query(?:Nodes|Relationships)",
    re.IGNORECASE,
)


def code_only(cypher: str) -> str:
    """The query without comments and string literals (backtick-quoted names keep their text)."""

    def replace(match: re.Match[str]) -> str:
        if match.group("string") is not None:
            return "''"
        if match.group("comment") is not None:
            return " "
        return re.sub(r"[^\w.]", "_", match.group("name")[1:-1].replace("``", "`"))

    return _TOKENS.sub(replace, cypher)


def assert_read_only(cypher: str) -> None:
    """Refuse write clauses and write procedures before the database is asked: 400 with the reason."""
    code = code_only(cypher)
    clause = _FORBIDDEN_CLAUSES.search(code)
    if clause:
        keyword = " ".join(clause.group(1).upper().split())
        raise BadRequest(f"Graph queries are read-only: {keyword} is not allowed.")
    for call in _CALL.finditer(code):
        procedure = call.group(1)
        if not _ALLOWED_PROCEDURES.fullmatch(procedure):
            raise BadRequest(
                f"Graph queries are read-only and may call only db.labels, db.relationshipTypes, "
                f"db.propertyKeys and the full-text/vector index queries: CALL {procedure} is not allowed."
            )


# Clause keywords (not property, parameter or label names: those follow `.`, `$` or `:`).
_CLAUSE = re.compile(
    r"(?<![.$:\w])\b(MATCH|OPTIONAL|WITH|UNWIND|WHERE|RETURN|CALL|UNION|LIMIT|SKIP|ORDER)\b", re.IGNORECASE
)


def with_row_limit(cypher: str, limit: int) -> str:
    """The query with `LIMIT limit` added when it ends in a RETURN that has none, so the database stops
    there instead of producing every row for us to cut. Anything else (UNION, a final LIMIT, a bare
    CALL) is left as it is and cut after fetching."""
    clauses = [match.group(1).upper() for match in _CLAUSE.finditer(code_only(cypher))]
    ends_in_return = clauses and clauses[-1] in ("RETURN", "ORDER", "SKIP") and "RETURN" in clauses
    if not ends_in_return or "UNION" in clauses or "LIMIT" in clauses[clauses.index("RETURN") :]:
        return cypher
    return f"{cypher}\nLIMIT {int(limit)}"


def mentions_parameter(cypher: str, name: str) -> bool:
    """Whether the query's code (not a comment or string) uses `$name`."""
    return re.search(rf"\${re.escape(name)}\b", code_only(cypher)) is not None
