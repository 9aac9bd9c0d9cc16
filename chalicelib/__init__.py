"""sealq: an SQS-compatible message service that never stores a message in the clear."""
