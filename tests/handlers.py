"""Load a function's Lambda handler the way the Lambda runtime does, and invoke it."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py once per test session (one warm execution environment)."""
    module_name = f"lambda_function_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, FUNCTIONS / name / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


@dataclass
class FakeLambdaContext:
    """The parts of the Lambda context the code reads; time runs out for real."""

    timeout_s: float = 29.0
    function_name: str = "local"
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self.started)) * 1000))


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def invoke(function: str, event: dict[str, Any], *, timeout_s: float = 29.0) -> Response:
    result = load_function(function).handler(event, FakeLambdaContext(timeout_s=timeout_s))
    return Response(result["statusCode"], result.get("headers", {}), result.get("body", ""))
