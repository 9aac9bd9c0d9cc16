"""SigV4 verification (header form) built on botocore's own signer.

botocore builds the canonical request and the string to sign
(:mod:`chalicelib.aws.signing`);
this module only hands it the request exactly as the client sent it (the headers
the client listed in SignedHeaders, the path it signed, the raw query string and
the body) and the signing key derived from the access key's secret, which the
caller caches per (key, date, region). Refusals are SQS's own errors and are
decided before anything is dispatched.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from chalicelib import errors
from chalicelib.aws import signing
from chalicelib.aws.signing import SignedHeaders
from chalicelib.clock import Clock

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "sqs"
# AWS refuses a request dated more than 15 minutes from its own clock, either way.
MAX_SKEW_SECONDS = 15 * 60
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class SignedRequest:
    """An HTTP request as the client sent (and signed) it.

    ``path`` is the path the client signed, still percent-encoded as on the wire
    (behind an API Gateway stage it includes the stage prefix); ``query`` is the raw
    query string without ``?``.
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Scope:
    """The credential scope of a signature: whose key, and for which day/region/service."""

    access_key_id: str
    date: str
    region: str
    service: str


@dataclass(frozen=True)
class Identity:
    """Who signed a verified request."""

    access_key_id: str
    account: str


@dataclass(frozen=True)
class ResolvedKey:
    """What verification needs of an access key: its account and the day's signing key."""

    account: str
    signing_key: bytes = field(repr=False)


class SigningKeys(Protocol):
    def resolve(self, scope: Scope) -> ResolvedKey:
        """The account and signing key of ``scope``'s active access key.

        Raises :class:`UnknownAccessKey` when no active key has that id; a failure to
        read the key store propagates (the request is refused, never served).
        """
        ...


class UnknownAccessKey(Exception):
    """No active access key has this id (never created, deleted or inactive)."""


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def derive_signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """The SigV4 signing key of ``secret`` for one day, region and service (SigV4's HMACs)."""
    k_date = _hmac(f"AWS4{secret}".encode(), date)
    return _hmac(_hmac(_hmac(k_date, region), service), "aws4_request")


@dataclass(frozen=True)
class _Authorization:
    scope: Scope
    signed_headers: tuple[str, ...]
    signature: str


def _first(headers: SignedHeaders, name: str) -> str:
    values = headers.get(name)
    return values[0] if values else ""


def _parse_authorization(value: str) -> _Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise errors.incomplete_signature(
            f"Unsupported AWS 'algorithm': '{algorithm}'. Use '{ALGORITHM}'."
        )
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, val = item.strip().partition("=")
        if sep:
            parts[name] = val
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if not parts.get(n)]
    if missing:
        raise errors.incomplete_signature(
            f"Authorization header requires '{missing[0]}' parameter."
        )
    credential = parts["Credential"].split("/")
    if len(credential) != 5 or credential[4] != "aws4_request" or not all(credential):
        raise errors.incomplete_signature(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            "keyid/date/region/service/term."
        )
    signed = tuple(parts["SignedHeaders"].split(";"))
    if any(not h or h != h.lower() for h in signed) or list(signed) != sorted(set(signed)):
        raise errors.incomplete_signature("SignedHeaders must be sorted lowercase header names.")
    key_id, date, region, service, _ = credential
    return _Authorization(Scope(key_id, date, region, service), signed, parts["Signature"])


def _timestamp(amz_date: str) -> float:
    """Seconds since the epoch of a ``YYYYMMDDTHHMMSSZ`` date (already matched by
    ``_AMZ_DATE``); ValueError when it is no real date."""
    moment = datetime.datetime(
        int(amz_date[0:4]), int(amz_date[4:6]), int(amz_date[6:8]),
        int(amz_date[9:11]), int(amz_date[11:13]), int(amz_date[13:15]),
        tzinfo=datetime.UTC,
    )
    return moment.timestamp()


class Verifier:
    """Checks one request's SigV4 signature; thread-safe and stateless.

    ``clock`` is the wall clock requests are dated against (shared with clients).
    """

    def __init__(
        self, keys: SigningKeys, *, region: str, clock: Clock, service: str = SERVICE,
        max_skew: float = MAX_SKEW_SECONDS,
    ) -> None:
        self._keys = keys
        self._region = region
        self._service = service
        self._clock = clock
        self._max_skew = max_skew

    def verify(self, request: SignedRequest) -> Identity:
        """The signer of ``request``; raises an :class:`errors.SqsError` refusal otherwise."""
        headers = SignedHeaders()
        for name, value in request.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        authorization = _first(headers, "authorization")
        if not authorization:
            raise errors.missing_authentication_token()
        auth = _parse_authorization(authorization)
        if "host" not in auth.signed_headers:
            raise errors.incomplete_signature(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
            )
        absent = [h for h in auth.signed_headers if h not in headers]
        if absent:
            raise errors.incomplete_signature(f"Signed header '{absent[0]}' is missing.")
        amz_date = _first(headers, "x-amz-date")
        if not _AMZ_DATE.fullmatch(amz_date):
            raise errors.incomplete_signature(
                "Authorization header requires existence of a valid 'X-Amz-Date' header."
            )
        if "x-amz-date" not in auth.signed_headers:
            raise errors.incomplete_signature("'X-Amz-Date' must be a 'SignedHeader'.")
        try:
            dated = _timestamp(amz_date)
        except ValueError:
            raise errors.incomplete_signature("'X-Amz-Date' is not a valid date.") from None
        if abs(self._clock.now() - dated) > self._max_skew:
            raise errors.request_expired()
        scope = auth.scope
        if scope.date != amz_date[:8]:
            raise errors.signature_does_not_match(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                "date from HTTP."
            )
        if scope.region != self._region:
            raise errors.signature_does_not_match(
                f"Credential should be scoped to a valid region, not '{scope.region}'."
            )
        if scope.service != self._service:
            raise errors.signature_does_not_match(
                f"Credential should be scoped to correct service: '{self._service}'."
            )
        if "x-amz-security-token" in headers:
            # sealq keys are long-term keys: a session token means another issuer's credentials.
            raise errors.invalid_client_token_id()
        body_sha256 = hashlib.sha256(request.body or b"").hexdigest()
        declared = headers.get("x-amz-content-sha256")
        if declared is not None and declared != [body_sha256]:
            raise errors.signature_does_not_match()  # an unsigned or mismatched payload
        try:
            resolved = self._keys.resolve(scope)
        except UnknownAccessKey:
            raise errors.invalid_client_token_id() from None
        expected = self._signature(request, headers, auth.signed_headers, amz_date,
                                   body_sha256, resolved.signing_key)
        if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
            raise errors.signature_does_not_match()
        return Identity(access_key_id=scope.access_key_id, account=resolved.account)

    def _signature(
        self, request: SignedRequest, headers: SignedHeaders, signed: tuple[str, ...],
        amz_date: str, body_sha256: str, key: bytes,
    ) -> str:
        chosen = SignedHeaders({name: headers[name] for name in signed})
        return signing.signature(
            method=request.method, path=request.path, query=request.query, headers=chosen,
            body_sha256=body_sha256, amz_date=amz_date, region=self._region,
            service=self._service, key=key,
        )
