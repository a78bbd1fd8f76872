"""Every route a function serves is deployed: it is a route of that function in template.yaml."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from cfnlint.decode import decode

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
HTTP_FUNCTIONS = {"ChatFunction": "chat", "RetrieveFunction": "retrieve", "ExtractFunction": "extract"}
# Every app serves these; API Gateway routes a path to one function, the chat function.
SHARED = {("GET", "/health"), ("GET", "/version")}


def declared(logical_id: str) -> set[tuple[str, str]]:
    template, _ = decode(str(TEMPLATE))
    events = template["Resources"][logical_id]["Properties"].get("Events", {})
    return {
        (event["Properties"]["Method"].upper(), re.sub(r"\{(\w+)\+\}", r"{\1}", event["Properties"]["Path"]))
        for event in events.values()
        if event["Type"] == "HttpApi"
    }


def served(function: str) -> set[tuple[str, str]]:
    app = importlib.import_module(f"functions.{function}.app").app
    return {
        (method.upper(), re.sub(r"\{(\w+):path\}", r"{\1}", path))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


@pytest.mark.parametrize(("logical_id", "function"), sorted(HTTP_FUNCTIONS.items()))
def test_every_route_a_function_serves_is_deployed_to_it(logical_id, function):
    routes = served(function) if function == "chat" else served(function) - SHARED
    assert routes - declared(logical_id) == set()
