from __future__ import annotations

import time

import pytest

from gateway_core.auth import KeyConfigError, KeyRing
from gateway_core.deadline import Deadline
from gateway_core.errors import DeadlineExceeded
from tests.handlers import FakeLambdaContext


def test_keys_map_to_tenants_and_default():
    ring = KeyRing.parse("k1:acme, k2:globex,k3\nk4:team-b_2")
    assert ring.tenant_for("k1") == "acme"
    assert ring.tenant_for("k2") == "globex"
    assert ring.tenant_for("k3") == "default"
    assert ring.tenant_for("k4") == "team-b_2"
    assert ring.tenant_for("k1 ") is None and ring.tenant_for("") is None and ring.tenant_for("k") is None


@pytest.mark.parametrize("tenant", ["bad tenant", "a/b", "x" * 65])
def test_malformed_key_entries_are_refused_without_echoing_the_key(tenant):
    with pytest.raises(KeyConfigError) as caught:
        KeyRing.parse(f"good-one:acme,s3cr3t-value:{tenant}")
    assert "#2" in caught.value.message
    assert "s3cr3t" not in caught.value.message and "good-one" not in caught.value.message


def test_an_entry_without_a_key_is_refused():
    with pytest.raises(KeyConfigError):
        KeyRing.parse(":acme")


def test_deadline_uses_the_lambda_remaining_time_minus_the_margin():
    deadline = Deadline.for_invocation(FakeLambdaContext(timeout_s=3.0))
    assert 2.3 < deadline.remaining() <= 2.5


def test_deadline_falls_back_to_the_configured_budget(monkeypatch):
    from gateway_core.settings import reset_settings

    monkeypatch.setenv("REQUEST_TIMEOUT_S", "7")
    reset_settings()
    assert 6.9 < Deadline.for_invocation(None).remaining() <= 7.0


def test_a_spent_deadline_refuses_more_work():
    deadline = Deadline.after(0.01)
    time.sleep(0.02)
    with pytest.raises(DeadlineExceeded):
        deadline.timeout()
    assert Deadline.after(5).timeout(cap=1.0) == 1.0
