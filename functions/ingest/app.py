"""Ingest function: SQS batches of S3 ObjectCreated/ObjectRemoved notifications."""

from gateway_core.ingest_events import handler

__all__ = ["handler"]
