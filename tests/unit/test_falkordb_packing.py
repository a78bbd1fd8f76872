"""The FalkorDB adapter's connections pack commands with hiredis (C): the same bytes redis-py packs in Python."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection, SSLConnection

from gateway_core.stores.graph.falkordb import packed_in_c

COMMANDS = [
    ("GRAPH.RO_QUERY", "kg_acme", "CYPHER `ids`=['a','中文'] RETURN 1", "--compact", "timeout", 1500),
    ("GRAPH.QUERY", "kg_t", "CYPHER `s`='q\"uo\\\\te\n' RETURN $s" + " " * 10_000 + "x", "--compact"),
    ("PING",),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_packed_in_c_is_the_same_bytes_as_redis_pys_own(command):
    in_c, in_python = packed_in_c(Connection)(), Connection()
    assert b"".join(in_c.pack_command(*command)) == b"".join(in_python.pack_command(*command))


def test_a_tls_connection_stays_tls():
    assert issubclass(packed_in_c(SSLConnection), SSLConnection)
