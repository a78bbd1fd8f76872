"""Load a function's Lambda handler the way the Lambda runtime does, and invoke it locally."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

INFRA = Path(__file__).resolve().parents[1]
FUNCTIONS = INFRA.parent / "functions"
ENV_FILE = INFRA / "env.local.json"  # the file `sam local invoke --env-vars` reads


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py once per process (one warm execution environment)."""
    module_name = f"lambda_function_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, FUNCTIONS / name / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


@dataclass
class LocalLambdaContext:
    """The parts of the Lambda context the code reads; the time runs out for real."""

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
    """Invoke an HTTP function's handler with an API Gateway v2 event."""
    result = load_function(function).handler(event, LocalLambdaContext(timeout_s=timeout_s))
    return Response(result["statusCode"], result.get("headers", {}), result.get("body", ""))


def invoke_raw(function: str, event: dict[str, Any], *, timeout_s: float = 900.0) -> Any:
    """Invoke any handler (e.g. the SQS-triggered ingest function) and return what it returns."""
    return load_function(function).handler(event, LocalLambdaContext(timeout_s=timeout_s))


class execution_environment:
    """Set environment variables for in-process invokes, as a new deployment would: fresh settings and
    clients. On exit the clients are closed (releasing the embedded qdrant folder lock and the graph
    connections) and the variables restored."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values: dict[str, str] = values
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        from gateway_core.registry import registry
        from gateway_core.settings import reset_settings

        for name, value in self.values.items():
            self.saved[name] = os.environ.get(name)
            os.environ[name] = value
        reset_settings()
        registry.reset()

    def __exit__(self, *_: object) -> None:
        from gateway_core import runtime
        from gateway_core.registry import registry
        from gateway_core.settings import reset_settings

        runtime.run(registry.aclose())
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings()


def load_env_file(function: str, path: Path = ENV_FILE) -> dict[str, str]:
    """Set the variables of a SAM `--env-vars` file that are not set already; return the ones it set.

    `Parameters` applies to every function, `<Name>Function` (e.g. `ChatFunction`) to one and wins over it,
    as with `sam local invoke`. A variable set to an empty value counts as unset, as in the settings.
    """
    document = json.loads(path.read_text(encoding="utf-8"))
    values = {**document.get("Parameters", {}), **document.get(f"{function.capitalize()}Function", {})}
    applied = {name: str(value) for name, value in values.items() if not os.environ.get(name)}
    os.environ.update(applied)
    return applied


def main(argv: list[str] | None = None) -> int:
    """`python -m infra.local.invoke <function> <event.json>`: what `sam local invoke` does, without Docker."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("function", choices=sorted(p.name for p in FUNCTIONS.iterdir() if p.is_dir()))
    parser.add_argument("event", type=Path)
    args = parser.parse_args(argv)
    load_env_file(args.function)
    event = json.loads(args.event.read_text(encoding="utf-8"))
    result = invoke_raw(args.function, event, timeout_s=29.0)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
