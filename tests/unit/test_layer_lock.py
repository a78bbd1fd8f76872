"""The layer's lock pins every package with hashes, and the tests run exactly those versions."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    return {normalize(name): version for name, version in PIN.findall(path.read_text(encoding="utf-8"))}


def lock_entries() -> list[str]:
    text = (ROOT / "shared" / "requirements.lock").read_text(encoding="utf-8")
    return re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2] if text.startswith("#") else text)


def test_every_locked_package_is_pinned_with_hashes():
    entries = [entry for entry in lock_entries() if PIN.match(entry)]
    assert len(entries) >= 30  # every transitive package, not the dozen top-level ones
    for entry in entries:
        assert "--hash=sha256:" in entry, entry.splitlines()[0]


def test_the_lock_holds_every_top_level_requirement_at_its_pinned_version():
    top, lock = pins(ROOT / "shared" / "requirements.txt"), pins(ROOT / "shared" / "requirements.lock")
    assert top and {name: lock.get(name) for name in top} == top


def test_the_tests_run_the_versions_the_layer_ships():
    lock, constraints = pins(ROOT / "shared" / "requirements.lock"), pins(ROOT / "requirements" / "constraints.txt")
    differ = {
        name: (version, constraints.get(name)) for name, version in lock.items() if constraints.get(name) != version
    }
    assert differ == {}, "shared/requirements.lock and requirements/constraints.txt disagree (layer, tests)"


def test_the_layer_build_installs_the_lock_and_ships_hash_based_pyc():
    makefile = (ROOT / "shared" / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("build-CoreLayer:", 1)[1].split("\nlock:", 1)[0]
    assert "-r requirements.lock" in recipe and "--require-hashes" in recipe and "--no-deps" in recipe
    assert "--platform manylinux_2_28_aarch64" in makefile and "--python-version $(LAMBDA_PYTHON)" in recipe
    assert "compileall" in recipe and "--invalidation-mode unchecked-hash" in recipe
    assert "LAMBDA_PYTHON := 3.12" in makefile
