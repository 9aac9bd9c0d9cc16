"""The admin plane: the operator's command over sealq's tables, bucket and key service,
with the operator's own AWS credentials (never through the public API, never in a Lambda)."""
