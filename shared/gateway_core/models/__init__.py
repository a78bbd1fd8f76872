"""Data shapes that requests, services and stores share (no I/O here)."""
