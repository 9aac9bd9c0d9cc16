"""The SQS wire: AWS JSON 1.0 and the query protocol, request parsing and responses."""
