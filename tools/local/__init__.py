"""The local stack: the dev server (``make run``) on an embedded moto, its HTTP server,
the local access key, resource provisioning and ``make stats``. Never in a Lambda."""
