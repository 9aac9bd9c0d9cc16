"""SigV4 verification, header form and query-string form (presigned), on botocore's signer.

botocore builds the canonical request and the string to sign
(:mod:`chalicelib.aws.signing`);
this module only hands it the request exactly as the client sent it (the headers
the client listed in SignedHeaders, the path it signed, the raw query string and
the body) and the signing key derived from the access key's secret, which the
caller caches per (key, date, region). Both forms pass the same checks and get the
same refusals (SQS's own errors, decided before anything is dispatched); the query
form adds ``X-Amz-Expires`` (1 s to 7 days) and may sign ``UNSIGNED-PAYLOAD`` for an
empty body. A request carrying both forms is refused.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs

from chalicelib import errors
from chalicelib.aws import signing
from chalicelib.aws.signing import SignedHeaders
from chalicelib.clock import Clock

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "sqs"
# AWS refuses a request dated more than 15 minutes from its own clock, either way.
MAX_SKEW_SECONDS = 15 * 60
# SigV4: a presigned request's X-Amz-Expires is 1 second to 7 days.
MAX_EXPIRES_SECONDS = 7 * 24 * 3600
_QUERY_REQUIRED = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature",
                   "X-Amz-SignedHeaders", "X-Amz-Date")
_QUERY_AUTH = (*_QUERY_REQUIRED, "X-Amz-Expires", "X-Amz-Security-Token",
               "X-Amz-Content-Sha256")
_DIGITS = re.compile(r"[0-9]{1,7}", re.ASCII)
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
class _Claim:
    """What a request says of its signature, in either form, before anything is checked.

    ``query`` is the raw query string as signed; ``expires`` the query form's
    X-Amz-Expires (None: the header form, or a query form without it); ``declared``
    the payload hash the request names (X-Amz-Content-Sha256), if any.
    """

    scope: Scope
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    query: str
    in_query: bool
    expires: int | None = None
    declared: str | None = None
    token: bool = False


def _first(headers: SignedHeaders, name: str) -> str:
    values = headers.get(name)
    return values[0] if values else ""


def _scope(credential: str) -> Scope:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise errors.incomplete_signature(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            "keyid/date/region/service/term."
        )
    return Scope(parts[0], parts[1], parts[2], parts[3])


def _signed_headers(value: str) -> tuple[str, ...]:
    signed = tuple(value.split(";"))
    if any(not h or h != h.lower() for h in signed) or list(signed) != sorted(set(signed)):
        raise errors.incomplete_signature("SignedHeaders must be sorted lowercase header names.")
    return signed


def _check_algorithm(algorithm: str) -> None:
    if algorithm != ALGORITHM:
        raise errors.incomplete_signature(
            f"Unsupported AWS 'algorithm': '{algorithm}'. Use '{ALGORITHM}'."
        )


def _header_claim(value: str, headers: SignedHeaders, query: str) -> _Claim:
    algorithm, _, rest = value.strip().partition(" ")
    _check_algorithm(algorithm)
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
    scope = _scope(parts["Credential"])
    signed = _signed_headers(parts["SignedHeaders"])
    amz_date = _first(headers, "x-amz-date")
    if not _AMZ_DATE.fullmatch(amz_date):
        raise errors.incomplete_signature(
            "Authorization header requires existence of a valid 'X-Amz-Date' header."
        )
    if "x-amz-date" not in signed:
        raise errors.incomplete_signature("'X-Amz-Date' must be a 'SignedHeader'.")
    declared = headers.get("x-amz-content-sha256")
    return _Claim(scope, signed, parts["Signature"], amz_date, query, in_query=False,
                  declared=",".join(declared) if declared is not None else None,
                  token="x-amz-security-token" in headers)


def _query_claim(params: Mapping[str, list[str]], headers: SignedHeaders, query: str) -> _Claim:
    missing = [n for n in _QUERY_REQUIRED if not (params.get(n) or [""])[0]]
    if missing:
        raise errors.incomplete_signature(
            "".join(f"AWS query-string parameters must include '{n}'. " for n in missing)
            + "Re-examine the query-string parameters."
        )
    repeated = [n for n in _QUERY_AUTH if len(params.get(n, [])) > 1]
    if repeated:
        raise errors.incomplete_signature(
            f"The query-string parameter '{repeated[0]}' must be given once.")
    one = {n: params[n][0] for n in _QUERY_AUTH if n in params}
    _check_algorithm(one["X-Amz-Algorithm"])
    scope = _scope(one["X-Amz-Credential"])
    signed = _signed_headers(one["X-Amz-SignedHeaders"])
    amz_date = one["X-Amz-Date"]
    if not _AMZ_DATE.fullmatch(amz_date):
        raise errors.incomplete_signature(
            "X-Amz-Date must be in ISO-8601 'basic format' (YYYYMMDDTHHMMSSZ).")
    expires = None
    if "X-Amz-Expires" in one:
        raw = one["X-Amz-Expires"]
        if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_EXPIRES_SECONDS:
            raise errors.incomplete_signature(
                f"X-Amz-Expires must be a whole number of seconds from 1 to "
                f"{MAX_EXPIRES_SECONDS} (7 days).")
        expires = int(raw)
    declared = one.get("X-Amz-Content-Sha256")
    if declared is None and "x-amz-content-sha256" in headers:
        declared = ",".join(headers["x-amz-content-sha256"])
    return _Claim(scope, signed, one["X-Amz-Signature"], amz_date, signing.query_to_sign(query),
                  in_query=True, expires=expires, declared=declared,
                  token="X-Amz-Security-Token" in one or "x-amz-security-token" in headers)


def _timestamp(amz_date: str) -> float:
    """Seconds since the epoch of a ``YYYYMMDDTHHMMSSZ`` date (already matched by
    ``_AMZ_DATE``); ValueError when it is no real date."""
    moment = datetime.datetime(
        int(amz_date[0:4]), int(amz_date[4:6]), int(amz_date[6:8]),
        int(amz_date[9:11]), int(amz_date[11:13]), int(amz_date[13:15]),
        tzinfo=datetime.UTC,
    )
    return moment.timestamp()


def _amz(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


def _expired(amz_date: str, now: float, window: int) -> errors.SqsError:
    """AWS's text for a signature past its time, with the window the request had."""
    span = "15 min." if window == MAX_SKEW_SECONDS else f"{window} sec."
    return errors.signature_does_not_match(
        f"Signature expired: {amz_date} is now earlier than {_amz(now - window)} "
        f"({_amz(now)} - {span})"
    )


class Verifier:
    """Checks one request's SigV4 signature, in the header or the query string;
    thread-safe and stateless.

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
        params = parse_qs(request.query, keep_blank_values=True) if request.query else {}
        in_query = "X-Amz-Algorithm" in params
        if authorization and in_query:
            raise errors.signature_does_not_match(
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' "
                "as HTTP header."
            )
        if in_query:
            claim = _query_claim(params, headers, request.query)
        elif authorization:
            claim = _header_claim(authorization, headers, request.query)
        else:
            raise errors.missing_authentication_token()
        if "host" not in claim.signed_headers:
            raise errors.incomplete_signature(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
            )
        absent = [h for h in claim.signed_headers if h not in headers]
        if absent:
            raise errors.incomplete_signature(f"Signed header '{absent[0]}' is missing.")
        self._check_time(claim)
        scope = claim.scope
        if scope.date != claim.amz_date[:8]:
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
        if claim.token:
            # sealq keys are long-term keys: a session token means another issuer's credentials.
            raise errors.invalid_client_token_id()
        payloads = _payloads(claim, request.body or b"")
        try:
            resolved = self._keys.resolve(scope)
        except UnknownAccessKey:
            raise errors.invalid_client_token_id() from None
        chosen = SignedHeaders({name: headers[name] for name in claim.signed_headers})
        for payload in payloads:
            expected = signing.signature(
                method=request.method, path=request.path, query=claim.query, headers=chosen,
                body_sha256=payload, amz_date=claim.amz_date, region=self._region,
                service=self._service, key=resolved.signing_key,
            )
            if hmac.compare_digest(expected.encode(), claim.signature.encode()):
                return Identity(access_key_id=scope.access_key_id, account=resolved.account)
        raise errors.signature_does_not_match()

    def _check_time(self, claim: _Claim) -> None:
        """Within the skew window either way (the header form); a query form may live
        until its X-Amz-Expires instead, and past it is AWS's "Signature expired" (403)."""
        try:
            dated = _timestamp(claim.amz_date)
        except ValueError:
            raise errors.incomplete_signature("'X-Amz-Date' is not a valid date.") from None
        now = self._clock.now()
        if not claim.in_query:
            if abs(now - dated) > self._max_skew:
                raise errors.request_expired()
            return
        if dated - now > self._max_skew:
            raise errors.request_expired()
        window = claim.expires if claim.expires is not None else int(self._max_skew)
        if now - dated > window:
            raise _expired(claim.amz_date, now, window)


def _payloads(claim: _Claim, body: bytes) -> tuple[str, ...]:
    """The payload hashes the signature may have covered, best first.

    The header form signs the body's hash (a declared X-Amz-Content-Sha256 must be it).
    The query form may sign UNSIGNED-PAYLOAD, as SigV4 defines it for presigned requests,
    but only for an empty body: a body no signature covers is refused, never read.
    """
    body_sha256 = hashlib.sha256(body).hexdigest()
    unsigned_allowed = claim.in_query and not body
    if claim.declared is not None:
        if claim.declared == body_sha256:
            return (body_sha256,)
        if claim.declared == signing.UNSIGNED_PAYLOAD and unsigned_allowed:
            return (signing.UNSIGNED_PAYLOAD,)
        raise errors.signature_does_not_match()  # an unsigned or mismatched payload
    return (body_sha256, signing.UNSIGNED_PAYLOAD) if unsigned_allowed else (body_sha256,)
