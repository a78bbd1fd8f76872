"""Lambda function package (its handler is `app.handler`)."""
