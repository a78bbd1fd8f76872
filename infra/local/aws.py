"""Local S3, SQS and DynamoDB (moto's server on 127.0.0.1), wired like template.yaml.

`LocalAWS` starts moto's threaded server on a free port and points boto3 at it
through AWS_ENDPOINT_URL. `DocumentPipeline` creates the bucket, its
notifications to a queue with a dead-letter queue, and the idempotency table,
then turns what arrives on the queue into the SQS batch event Lambda would
deliver to the ingest function.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self

import boto3

REGION = "us-east-1"
LOCAL_ENV = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": REGION}


class LocalAWS:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> Self:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        # moto keeps its state per process: start every stand-in empty.
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST"))
        for name, value in {**LOCAL_ENV, "AWS_ENDPOINT_URL": self.endpoint_url}.items():
            self._saved[name] = os.environ.get(name)
            os.environ[name] = value
        return self

    def __exit__(self, *_: object) -> None:
        self._server.stop()
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=REGION)


@dataclass
class DocumentPipeline:
    """Bucket -> notifications -> queue (+ DLQ) and the idempotency table, as deployed."""

    aws: LocalAWS
    bucket: str = "documents"
    queue: str = "ingest"
    table: str = "ingest-idempotency"
    max_receive_count: int = 3

    def create(self) -> DocumentPipeline:
        s3, sqs, dynamodb = self.aws.client("s3"), self.aws.client("sqs"), self.aws.client("dynamodb")
        # Unversioned here: moto announces deletes only on unversioned buckets (on AWS both work,
        # the deployed bucket is versioned and deletes arrive as ObjectRemoved:DeleteMarkerCreated).
        s3.create_bucket(Bucket=self.bucket)
        dlq_url = sqs.create_queue(QueueName=f"{self.queue}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue_url = sqs.create_queue(
            QueueName=self.queue,
            Attributes={
                "VisibilityTimeout": "1",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": self.max_receive_count}
                ),
            },
        )["QueueUrl"]
        self.dlq_url = dlq_url
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        s3.put_bucket_notification_configuration(
            Bucket=self.bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": self.queue_arn, "Events": ["s3:ObjectCreated:*"]},
                    {"QueueArn": self.queue_arn, "Events": ["s3:ObjectRemoved:*"]},
                ]
            },
        )
        dynamodb.create_table(
            TableName=self.table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        self.drain()  # S3 announces the new configuration with a test event
        return self

    def receive(self, max_messages: int = 10, wait_s: int = 0) -> dict[str, Any]:
        """Up to 10 messages from the queue, as the SQS event Lambda would deliver."""
        messages = (
            self.aws.client("sqs")
            .receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_s,
                AttributeNames=["All"],
            )
            .get("Messages", [])
        )
        return {"Records": [self._record(message) for message in messages]}

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }

    def acknowledge(self, event: dict[str, Any], response: dict[str, Any]) -> None:
        """What Lambda's event source mapping does: delete every record not reported as failed."""
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        sqs = self.aws.client("sqs")
        for record in event["Records"]:
            if record["messageId"] not in failed:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"])

    def drain(self) -> None:
        sqs = self.aws.client("sqs")
        while messages := sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@contextmanager
def local_pipeline(**kwargs: Any) -> Iterator[DocumentPipeline]:
    with LocalAWS() as aws:
        yield DocumentPipeline(aws, **kwargs).create()
