"""The ingest function: SQS batches of S3 notifications -> documents in the stores.

Records of one batch run concurrently (Powertools' async batch processing,
bounded by INGEST_CONCURRENCY); only failed records are reported back
(`batchItemFailures`), so SQS retries them alone and, after maxReceiveCount,
moves them to the dead-letter queue. With IDEMPOTENCY_TABLE set, each object
version is processed once (Powertools Idempotency, keyed on
bucket/key/version-or-etag); without it, deterministic ids alone keep a
redelivery harmless.

Versioned buckets: an event names an object version (`versionId`), and S3
may deliver events late or out of order. Instead of ordering events by their
`sequencer` (which would need state kept per key), each event is checked
against the key's current version, which S3 reads consistently:
- ObjectCreated reads the current version and skips the event when its
  version is no longer the current one (a newer upload has, or will have, its
  own event; a late older event never overwrites it). A version deleted since
  is skipped too (its ObjectRemoved event follows).
- ObjectRemoved removes the document only when the key has no current
  version any more (a delete marker, or no object). When the key still has
  one, the document stays: after a delete marker or an unversioned delete the
  key was uploaded again (that upload has its own event); after a permanent
  delete of one version (`ObjectRemoved:Delete` with a `versionId`), the
  current version is indexed again, which is the live one if the deleted
  version was noncurrent (unchanged chunks are not re-embedded) and the one
  now current if it was the latest. Expiring noncurrent versions (lifecycle)
  sends no ObjectRemoved event, and needs none.

Tenant convention (`tenant_and_doc`): the first segment of the object key
names the tenant only when it is a configured tenant (one the API keys map
to), and is then not part of the doc_id (`acme/handbook/intro.md` -> tenant
`acme`, doc_id `handbook/intro.md`). Any other key belongs to the deployment's
default tenant (the only tenant when exactly one is configured, `default`
otherwise), with the whole key as doc_id (`handbook/intro.md`).

Sidecar graphs: `<key>.graph.json` beside a document is the user's own graph
for it (services/supplied_graph.py): it is never ingested as a document, the
document is ingested with it and no model is asked. Uploading, replacing or
deleting a sidecar ingests its document again (when the document exists).

Backpressure: a record whose extraction is rate limited or paused by the
tenant's token budget (`Deferred`) is sent to the queue again as a new message
with `DelaySeconds` (the provider's Retry-After, at most 900 s; a paused one
after INGEST_PAUSED_RETRY_S) and the original is reported as processed, so
its receive count never reaches the DLQ. What was extracted is kept, so the
next delivery asks the model only for the chunks still missing.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import weakref
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from . import runtime
from .auth import DEFAULT_TENANT, load_keyring
from .clients import aws
from .deadline import Deadline, set_current
from .errors import Unprocessable
from .observability import bind_request, count, logger, metrics
from .registry import registry
from .services.ingest import Deferred, ingest_document, remove_document, tenant_metric
from .services.supplied_graph import SuppliedGraph, parse_supplied_graph
from .settings import get_settings

SIDECAR_SUFFIX = ".graph.json"
_DOCUMENT_LOCKS: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
MAX_DELAY_S = 900  # SQS's longest DelaySeconds


class PoisonRecord(Exception):
    """A record that can never succeed as it is (it still goes through SQS retries to the DLQ)."""


@dataclass(frozen=True)
class ObjectEvent:
    action: str  # "created" | "removed"
    bucket: str
    key: str
    version: str  # versionId, else eTag, else sequencer
    version_id: str | None = None  # S3's versionId (versioned buckets only)
    name: str = ""  # S3's eventName, e.g. ObjectRemoved:DeleteMarkerCreated

    @property
    def idempotency_data(self) -> dict[str, str]:
        return {"action": self.action, "bucket": self.bucket, "key": self.key, "version": self.version}


def tenant_and_doc(key: str, tenants: Collection[str]) -> tuple[str, str]:
    """The tenant and document id of an object key, given the configured tenants.

    `acme/handbook/intro.md` with `acme` configured -> (`acme`, `handbook/intro.md`); otherwise the
    deployment's default tenant and the whole key: (`default`, `handbook/intro.md`), or with exactly
    one tenant configured, e.g. `acme` -> (`acme`, `handbook/intro.md`).
    """
    head, sep, rest = key.partition("/")
    if sep and rest and head in tenants:
        return head, rest
    return (next(iter(tenants)) if len(tenants) == 1 else DEFAULT_TENANT), key


def parse_record(body: str) -> list[ObjectEvent]:
    """The S3 object events in one SQS message body (S3's test event yields none)."""
    try:
        message = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        raise PoisonRecord("the message body is not JSON") from None
    if isinstance(message, dict) and message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records") if isinstance(message, dict) else None
    if not isinstance(records, list) or not records:
        raise PoisonRecord("the message is not an S3 event notification (no Records)")
    events = []
    for record in records:
        try:
            name = record["eventName"]
            bucket = record["s3"]["bucket"]["name"]
            obj = record["s3"]["object"]
            key = unquote_plus(obj["key"])
        except (KeyError, TypeError):
            raise PoisonRecord("an S3 record lacks eventName, bucket or key") from None
        action = (
            "created" if name.startswith("ObjectCreated") else "removed" if name.startswith("ObjectRemoved") else None
        )
        if action is None:
            raise PoisonRecord(f"unsupported S3 event {name!r}")
        version = obj.get("versionId") or obj.get("eTag") or obj.get("sequencer") or ""
        version_id = obj.get("versionId")
        events.append(ObjectEvent(action, bucket, key, str(version), str(version_id) if version_id else None, name))
    return events


class Superseded(Exception):
    """The event's version is not the key's current version: nothing to do for it."""


def _read_object(event: ObjectEvent, *, any_version: bool = False) -> tuple[bytes, str | None]:
    """Blocking S3 read of the key's current version, the size limit checked before the body is fetched.

    Raises Superseded when the event names a version that is no longer the current one (unless
    `any_version`: then the current version is what is wanted).
    """
    s3 = aws.client("s3")
    limit = get_settings().ingest_max_bytes
    try:
        response = s3.get_object(Bucket=event.bucket, Key=event.key)
    except s3.exceptions.NoSuchKey:
        if event.version_id:  # deleted since: the delete's own event removes the document
            raise Superseded(f"version {event.version_id} was deleted since") from None
        raise PoisonRecord(f"s3://{event.bucket}/{event.key} does not exist (any more)") from None
    current = response.get("VersionId")
    if event.version_id and current and current != event.version_id and not any_version:
        response["Body"].close()
        raise Superseded(f"version {event.version_id} is not the current version {current}")
    size = int(response.get("ContentLength") or 0)
    if size > limit:
        response["Body"].close()
        raise PoisonRecord(f"s3://{event.bucket}/{event.key} is {size} bytes, over INGEST_MAX_BYTES={limit}")
    return response["Body"].read(), response.get("ContentType")


def _exists(event: ObjectEvent) -> bool:
    """Blocking: whether the key has a current version (a delete marker or no object: no)."""
    from botocore.exceptions import ClientError

    try:
        aws.client("s3").head_object(Bucket=event.bucket, Key=event.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _current_version(event: ObjectEvent) -> str | None:
    """Blocking: the key's current version id (or ETag), None when it has none."""
    from botocore.exceptions import ClientError

    try:
        head = aws.client("s3").head_object(Bucket=event.bucket, Key=event.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return str(head.get("VersionId") or head.get("ETag") or "").strip('"')


def _skipped(event: ObjectEvent, reason: str) -> dict[str, Any]:
    logger.info("event skipped", extra={"object": event.idempotency_data, "reason": reason})
    return {"skipped": reason, "key": event.key, "version": event.version}


def _read_sidecar(event: ObjectEvent) -> SuppliedGraph | None:
    """Blocking: the document's `<key>.graph.json`, parsed, or None when there is none."""
    from botocore.exceptions import ClientError

    s3 = aws.client("s3")
    try:
        response = s3.get_object(Bucket=event.bucket, Key=event.key + SIDECAR_SUFFIX)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    size = int(response.get("ContentLength") or 0)
    if size > get_settings().ingest_max_bytes:
        response["Body"].close()
        raise PoisonRecord(f"{event.key}{SIDECAR_SUFFIX} is {size} bytes, over INGEST_MAX_BYTES")
    try:
        value = json.loads(response["Body"].read())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise PoisonRecord(f"{event.key}{SIDECAR_SUFFIX} is not JSON") from None
    try:
        return parse_supplied_graph(value)
    except Unprocessable as exc:
        raise PoisonRecord(f"{event.key}{SIDECAR_SUFFIX}: {exc.message}") from exc


async def process_event(event: ObjectEvent) -> dict[str, Any]:
    if event.key.endswith(SIDECAR_SUFFIX):  # a sidecar changed: ingest its document again, with or without it
        document = ObjectEvent("created", event.bucket, event.key[: -len(SIDECAR_SUFFIX)], "")
        version = await asyncio.to_thread(_current_version, document)
        if version is None:
            return _skipped(event, "a sidecar graph whose document is not in the bucket (yet)")
        return await _ingest_current(ObjectEvent("created", document.bucket, document.key, version))
    tenant, doc_id = tenant_and_doc(event.key, (await load_keyring()).tenants)
    if event.action == "removed":
        if not await asyncio.to_thread(_exists, event):
            removed = await remove_document(tenant, doc_id)
            return {"doc_id": doc_id, "chunks_deleted": removed.chunks_deleted, "graph": removed.graph}
        if not (event.version_id and event.name == "ObjectRemoved:Delete"):
            return _skipped(event, "the key was uploaded again since: the document stays")
        # One version was deleted for good: index whatever version is current now.
    return await _ingest_current(event, any_version=event.action == "removed")


async def _ingest_current(event: ObjectEvent, *, any_version: bool = True) -> dict[str, Any]:
    tenant, doc_id = tenant_and_doc(event.key, (await load_keyring()).tenants)
    try:
        data, content_type = await asyncio.to_thread(_read_object, event, any_version=any_version)
    except Superseded as exc:
        return _skipped(event, str(exc))
    supplied = await asyncio.to_thread(_read_sidecar, event)
    if content_type in ("binary/octet-stream", "application/octet-stream"):
        content_type = None  # S3's default says nothing: go by the file name
    # One ingest of a document at a time in this environment (its event and its sidecar's may share a batch).
    lock = _DOCUMENT_LOCKS.setdefault(f"{tenant}\x1f{doc_id}", asyncio.Lock())
    try:
        async with lock:
            report = await ingest_document(
                tenant,
                doc_id,
                data,
                filename=event.key,
                content_type=content_type,
                source=f"s3://{event.bucket}/{event.key}",
                version=event.version,
                supplied=supplied,
            )
    except Unprocessable as exc:  # unsupported or undecodable file, an invalid graph: retrying cannot help
        raise PoisonRecord(exc.message) from exc
    return report.as_dict()


class Idempotency:
    """Powertools Idempotency's DynamoDB persistence, used around async work.

    (Powertools' decorators wrap sync functions; the persistence layer they
    use is called here directly, in a worker thread since boto3 blocks.)
    """

    def __init__(self, table: str) -> None:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

        self.persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=aws.client("dynamodb"))
        self.persistence.configure(IdempotencyConfig(expires_after_seconds=7 * 24 * 3600), function_name="ingest")

    async def run(self, event: ObjectEvent, work: Any) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyItemAlreadyExistsError,
        )

        data = event.idempotency_data
        try:
            await asyncio.to_thread(self.persistence.save_inprogress, data, 15 * 60 * 1000)
        except IdempotencyItemAlreadyExistsError as exc:
            record = exc.old_data_record or await asyncio.to_thread(self.persistence.get_record, data)
            if record is not None and record.status == "COMPLETED":
                logger.info("already processed", extra={"object": data})
                previous: dict[str, Any] = record.response_json_as_dict() or {}
                return {"skipped": "already processed", **previous}
            raise RuntimeError(f"s3://{event.bucket}/{event.key} is being processed by another invocation") from None
        try:
            result: dict[str, Any] = await work()
        except BaseException as exc:  # cancelled too: release the record so that a retry can run
            failure = exc if isinstance(exc, Exception) else RuntimeError(type(exc).__name__)
            await asyncio.to_thread(self.persistence.delete_record, data, failure)
            raise
        await asyncio.to_thread(self.persistence.save_success, data, result)
        return result


def _idempotency() -> Idempotency | None:
    table = get_settings().idempotency_table
    return registry.get(f"idempotency:{table}", lambda: Idempotency(table), loop_bound=False) if table else None


async def handle_record(record: SQSRecord) -> list[dict[str, Any]]:
    async with _limit():
        results = []
        for event in parse_record(record.body):
            guard = _idempotency()
            work = functools.partial(process_event, event)
            try:
                results.append(await guard.run(event, work) if guard else await work())
            except Deferred as exc:  # come back later as a new message: this one is done, its receives end
                delay = await asyncio.to_thread(_send_again, record, exc.delay_s)
                tenant_metric(exc.report.tenant, "RecordsDeferred", 1)
                logger.info(
                    "record deferred",
                    extra={"object": event.idempotency_data, "reason": exc.reason, "delay_s": delay},
                )
                results.append({"deferred": exc.reason, "delay_s": delay, **exc.report.as_dict()})
                return results  # the new message carries the whole body, later events included
            except Exception as exc:
                count("IngestFailures")
                logger.error(
                    "record failed",
                    extra={
                        "message_id": record.message_id,
                        "object": event.idempotency_data,
                        "reason": str(exc) or type(exc).__name__,
                    },
                )
                raise
        return results


def _send_again(record: SQSRecord, delay_s: float) -> int:
    """Blocking: the record's body as a new message on its queue, delayed (at most SQS's 900 s)."""
    sqs = aws.client("sqs")
    url = get_settings().ingest_queue_url
    if not url:  # arn:aws:sqs:<region>:<account>:<name>
        *_, account, name = record.event_source_arn.split(":")
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    delay = min(MAX_DELAY_S, max(0, math.ceil(delay_s)))
    sqs.send_message(QueueUrl=url, MessageBody=record.body, DelaySeconds=delay)
    return delay


def _limit() -> asyncio.Semaphore:
    return registry.get("ingest:limit", lambda: asyncio.Semaphore(get_settings().ingest_concurrency))


class OneLoopBatchProcessor(AsyncBatchProcessor):
    """Powertools' async batch processor, always on the environment's one loop.

    Outside Lambda (local runs, tests) Powertools would use asyncio.run, i.e.
    a new loop per batch, and every loop-bound client would be rebuilt.
    """

    def async_process(self) -> list[Any]:
        async def process_all() -> list[Any]:
            return list(await asyncio.gather(*(self._async_process_record(record) for record in self.records)))

        return runtime.run(process_all())


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_request(request_id=getattr(context, "aws_request_id", None), route="sqs:ingest")
    # The batch's own budget (not a request's): every record's calls get what is left of it.
    set_current(Deadline.for_invocation(context, budget=get_settings().ingest_timeout_s))
    processor = OneLoopBatchProcessor(event_type=EventType.SQS)
    response = async_process_partial_response(
        event=event, record_handler=handle_record, processor=processor, context=context
    )
    return dict(response)
