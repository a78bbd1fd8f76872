"""Deployment helpers (package sizes for Lambda)."""
