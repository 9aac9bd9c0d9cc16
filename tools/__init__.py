"""Local-run tooling (dev server, provisioning): never packaged into the Lambda functions."""
