"""botocore's SigV4 signer, used to check a request's signature as AWS would compute it.

botocore builds the canonical request and the string to sign from exactly what the
client signed: its method, path and raw query, the headers it listed in
SignedHeaders and the body's hash (already checked by the caller). The signature is
then the HMAC of that string under the day's signing key, which the caller derived
and caches. A request signed in its query string (presigned) signed that query
without its ``X-Amz-Signature`` (:func:`query_to_sign`), and may have signed
``UNSIGNED-PAYLOAD`` in place of the body's hash.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import unquote

from botocore.auth import UNSIGNED_PAYLOAD as _UNSIGNED_PAYLOAD
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# SigV4's literal payload hash for a body the signature does not cover.
UNSIGNED_PAYLOAD: str = _UNSIGNED_PAYLOAD
SIGNATURE_PARAMETER = "X-Amz-Signature"


def query_to_sign(query: str) -> str:
    """The raw query string a query-signed request signed: every pair as sent but the
    ``X-Amz-Signature`` (SigV4: the canonical query string includes every parameter
    except the signature). botocore sorts and joins what is left."""
    return "&".join(pair for pair in query.split("&")
                    if unquote(pair.partition("=")[0]) != SIGNATURE_PARAMETER)


class SignedHeaders(dict[str, list[str]]):
    """Lower-cased header names to their values, with the ``get_all`` botocore's
    ``canonical_headers`` reads (much cheaper than an ``email.message`` per request)."""

    def get_all(self, name: str, failobj: Any = None) -> list[str]:
        return self.get(name, []) if failobj is None else self.get(name, failobj)


class _Signer(SigV4Auth):
    """botocore's SigV4 over exactly the client's signed headers, the body hash already
    checked, and a given signing key."""

    def __init__(
        self, region: str, service: str, signed: SignedHeaders, body_sha256: str, key: bytes
    ) -> None:
        super().__init__(Credentials("-", "-"), service, region)
        self._signed = signed
        self._body_sha256 = body_sha256
        self._key = key

    def headers_to_sign(self, request: AWSRequest) -> Any:
        return self._signed

    def payload(self, request: AWSRequest) -> str:
        return self._body_sha256

    def signature(self, string_to_sign: str, request: AWSRequest) -> str:
        return hmac.new(self._key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def signature(
    *, method: str, path: str, query: str, headers: SignedHeaders, body_sha256: str,
    amz_date: str, region: str, service: str, key: bytes,
) -> str:
    """The hex SigV4 signature of a request as its client signed it; ``body_sha256`` is
    the payload hash it signed (the body's SHA-256, or :data:`UNSIGNED_PAYLOAD`)."""
    url = "https://sealq" + path + (f"?{query}" if query else "")
    # The method, path and query go to botocore on the request; the signed headers
    # and the body's hash (checked already) through the signer's own hooks.
    wire = AWSRequest(method=method, url=url)
    wire.context["timestamp"] = amz_date
    wire.context["payload_signing_enabled"] = True
    signer = _Signer(region, service, headers, body_sha256, key)
    canonical = signer.canonical_request(wire)
    return str(signer.signature(signer.string_to_sign(wire, canonical), wire))
