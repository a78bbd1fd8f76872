"""Ingest function: SQS batches of S3 ObjectCreated/ObjectRemoved notifications."""

from gateway_core import coldstart, snapstart
from gateway_core.ingest_events import handler

# At init rather than in the first batch: the stores, the embedder, the LLM client (extraction), the
# document parsers, Powertools Idempotency (with IDEMPOTENCY_TABLE), and the boto3 clients a batch
# calls (S3 reads, SQS re-sends; DynamoDB for idempotency), which open no connection until used.
coldstart.preload(llm=True, documents=True, idempotency=True, aws_clients=("s3", "sqs"))
snapstart.install()  # SnapStart: close connections before the snapshot, renew per-sandbox state after a restore

__all__ = ["handler"]
