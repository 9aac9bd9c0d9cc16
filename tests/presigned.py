"""Presigned query-API URLs as botocore's own ``SigV4QueryAuth`` writes them.

``signed_at`` dates a URL in the past (or future) without sleeping or moving a clock:
botocore takes the signing time from ``botocore.auth.get_current_datetime``, which is
patched for the one call.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from unittest import mock
from urllib.parse import urlencode, urlsplit

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

QUERY_VERSION = "2012-11-05"


def presign(
    url: str, params: Mapping[str, str], credentials: Credentials, *, region: str,
    expires: int = 60, signed_at: datetime.datetime | None = None, service: str = "sqs",
    method: str = "GET", headers: Mapping[str, str] | None = None,
    unsigned_payload: bool = False,
) -> str:
    """``url`` with ``params`` and the SigV4 query-string authentication of ``credentials``
    (``X-Amz-Algorithm`` ... ``X-Amz-Signature``), signed for ``host`` as botocore does.

    ``unsigned_payload``: sign ``UNSIGNED-PAYLOAD`` for the body, as botocore does over
    HTTPS when payload signing is off (``url`` must be ``https``)."""
    query = urlencode(dict(params))
    request = AWSRequest(method=method, url=f"{url}?{query}" if query else url,
                         headers=dict(headers or {}))
    request.headers["Host"] = urlsplit(url).netloc
    if unsigned_payload:
        request.context["payload_signing_enabled"] = False
    auth = SigV4QueryAuth(credentials, service, region, expires=expires)
    if signed_at is None:
        auth.add_auth(request)
    else:
        naive = signed_at.astimezone(datetime.UTC).replace(tzinfo=None)
        with mock.patch("botocore.auth.get_current_datetime", return_value=naive):
            auth.add_auth(request)
    return str(request.url)


def send_message_params(body: str, queue_url: str | None = None) -> dict[str, str]:
    """A query-API SendMessage: ``Action``, ``MessageBody``, ``Version`` (and ``QueueUrl``)."""
    params = {"Action": "SendMessage", "MessageBody": body, "Version": QUERY_VERSION}
    if queue_url is not None:
        params["QueueUrl"] = queue_url
    return params
