"""Invoke the real Lambda handlers in tests (see infra/local/invoke.py)."""

from infra.local.invoke import FUNCTIONS, LocalLambdaContext, Response, invoke, invoke_raw, load_function

FakeLambdaContext = LocalLambdaContext

__all__ = ["FUNCTIONS", "FakeLambdaContext", "LocalLambdaContext", "Response", "invoke", "invoke_raw", "load_function"]
