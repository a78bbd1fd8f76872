"""Local stand-ins for what Lambda talks to: FalkorDB, S3/SQS/DynamoDB, an OpenAI-compatible server, the API."""
