"""Capabilities: one module each, independent of HTTP."""
