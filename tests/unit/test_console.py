"""The console's page and assets: served by the retrieve function with no key, strict headers, keyed data."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from gateway_core.routers import console
from infra.local.lambda_events import http_event
from tests.handlers import invoke

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "shared" / "gateway_core" / "console"
KEY = "test-key-acme"


def get(path: str, api_key: str | None = None, query: dict[str, str] | None = None):
    return invoke("retrieve", http_event("GET", path, api_key=api_key, query=query))


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/console", "text/html"),
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
        ("/console/vendor/cytoscape.min.js", "text/javascript"),
    ],
)
def test_the_page_and_its_files_need_no_key_and_carry_strict_headers(path, content_type):
    response = get(path)
    assert response.status == 200, response.text
    headers = {name.lower(): value for name, value in response.headers.items()}
    assert headers["content-type"].startswith(content_type)
    policy = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert "unsafe-eval" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    "path", ["/console/../auth.py", "/console/vendor.sh", "/console/nope.js", "/console/index.html"]
)
def test_only_the_console_files_are_served(path):
    assert get(path).status == 404


@pytest.mark.parametrize(
    ("path", "query"),
    [("/graph/entities", {"q": "Northwind"}), ("/graph/neighbourhood", {"id": "c:nw"}), ("/documents", None)],
)
def test_the_data_calls_need_a_key(path, query):
    assert get(path, query=query).status == 401
    assert get(path, api_key="wrong-key", query=query).status == 401


def test_the_page_has_no_inline_script_or_style_and_no_external_address():
    html = (ASSETS / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline <script>"
    assert "<style" not in html and " style=" not in html and " on" + "click=" not in html
    for name in ("index.html", "console.js", "console.css"):
        text = (ASSETS / name).read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.IGNORECASE), name
    script = (ASSETS / "console.js").read_text(encoding="utf-8")
    assert "localStorage" not in script and "sessionStorage" in script
    assert "innerHTML" not in script  # text is always inserted as text


def test_the_vendored_library_ships_with_its_licence_and_pinned_version():
    versions = (ASSETS / "vendor" / "VERSIONS.txt").read_text()
    pinned = re.search(r"CYTOSCAPE_VERSION=(\S+)", (ASSETS / "vendor.sh").read_text()).group(1)
    assert f"cytoscape {pinned} " in versions
    assert "Permission is hereby granted" in (ASSETS / "vendor" / "cytoscape.LICENSE.txt").read_text()
    assert f'"{pinned}"' in (ASSETS / "vendor" / "cytoscape.min.js").read_text()  # the library's own version


def test_the_package_data_ships_every_console_file():
    config = tomllib.loads((ROOT / "shared" / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["gateway_core"]
    served = {f"console/{name}" for name in console._asset_files()} | {"console/index.html"}
    for name in served:
        assert any(Path(name).match(pattern) for pattern in patterns), f"{name} is not package data"


@pytest.mark.parametrize("path", ["/console", "/console/console.js"])
def test_head_answers_like_get_without_a_body(path):
    got = get(path)
    head = invoke("retrieve", http_event("HEAD", path, api_key=None))
    assert head.status == 200, head.text
    assert head.text == "" and got.text
    head_headers = {name.lower(): value for name, value in head.headers.items()}
    got_headers = {name.lower(): value for name, value in got.headers.items()}
    for name in ("content-type", "content-security-policy", "x-content-type-options", "x-frame-options"):
        assert head_headers[name] == got_headers[name]
