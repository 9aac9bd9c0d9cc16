"""The SigV4 verifier against botocore's own signer, and every refusal it makes."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.auth.sigv4 import (
    MAX_SKEW_SECONDS,
    ResolvedKey,
    Scope,
    SignedRequest,
    UnknownAccessKey,
    Verifier,
    derive_signing_key,
)
from chalicelib.clock import SYSTEM_CLOCK, FakeClock
from chalicelib.errors import SqsError

KEY_ID = "AKIAEXAMPLE000000001"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ACCOUNT = "123456789012"
REGION = "us-east-1"


class Keys:
    """Signing keys of one account, derived as the real cache does; counts lookups."""

    def __init__(self, keys: dict[str, str] | None = None) -> None:
        self.secrets = {KEY_ID: SECRET} if keys is None else keys
        self.lookups = 0

    def resolve(self, scope: Scope) -> ResolvedKey:
        self.lookups += 1
        secret = self.secrets.get(scope.access_key_id)
        if secret is None:
            raise UnknownAccessKey(scope.access_key_id)
        return ResolvedKey(ACCOUNT, derive_signing_key(secret, scope.date, scope.region))


def sign(
    method: str = "POST", url: str = "https://sealq.test/", body: bytes = b"{}",
    headers: dict[str, str] | None = None, *, key_id: str = KEY_ID, secret: str = SECRET,
    region: str = REGION, service: str = "sqs",
) -> SignedRequest:
    """A request signed by botocore's SigV4Auth, as it would arrive on the wire."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    request.headers["Host"] = urlsplit(url).netloc
    SigV4Auth(Credentials(key_id, secret), service, region).add_auth(request)
    parts = urlsplit(url)
    return SignedRequest(
        method=method, path=parts.path, query=parts.query,
        headers={k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()},
        body=body,
    )


def verifier(keys: Keys | None = None, clock: Any = SYSTEM_CLOCK) -> Verifier:
    return Verifier(keys or Keys(), region=REGION, clock=clock)


def refusal(
    request: SignedRequest, keys: Keys | None = None, clock: Any = SYSTEM_CLOCK
) -> SqsError:
    with pytest.raises(SqsError) as caught:
        verifier(keys, clock).verify(request)
    return caught.value


def with_headers(request: SignedRequest, **changes: str | None) -> SignedRequest:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in
               {c.lower().replace("_", "-") for c in changes}}
    for name, value in changes.items():
        if value is not None:
            headers[name.replace("_", "-")] = value
    return SignedRequest(request.method, request.path, request.query, headers, request.body)


# -- what verifies -----------------------------------------------------------------


def test_a_request_signed_by_botocore_verifies_and_names_its_account() -> None:
    identity = verifier().verify(sign())
    assert (identity.access_key_id, identity.account) == (KEY_ID, ACCOUNT)


def test_the_derived_signing_key_is_the_one_botocore_signs_with() -> None:
    request = AWSRequest(method="POST", url="https://h/", data=b"x", headers={"Host": "h"})
    request.context["timestamp"] = "20260101T000000Z"
    auth = SigV4Auth(Credentials(KEY_ID, SECRET), "sqs", REGION)
    sts = auth.string_to_sign(request, auth.canonical_request(request))
    key = derive_signing_key(SECRET, "20260101", REGION)
    assert auth._sign(key, sts, hex=True) == auth.signature(sts, request)


segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
query_pair = st.tuples(segment, st.text(alphabet="abcXYZ019-_.~", max_size=8))
header_name = st.sampled_from(["x-amz-target", "content-type", "x-custom-one", "x-custom-two",
                               "amz-sdk-request", "x-amz-meta-a"])
header_value = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789.;=/-", min_size=1,
                       max_size=20)


@st.composite
def requests(draw: Any) -> tuple[SignedRequest, list[str]]:
    method = draw(st.sampled_from(["POST", "GET", "PUT", "DELETE"]))
    stage = draw(st.sampled_from(["", "/prod", "/v1"]))
    segments = draw(st.lists(segment, max_size=3))
    path = stage + "/" + "/".join(quote(s) for s in segments)
    pairs = draw(st.lists(query_pair, max_size=3))
    query = "&".join(f"{k}={v}" for k, v in pairs)
    headers = draw(st.dictionaries(header_name, header_value, max_size=4))
    body = draw(st.binary(max_size=200))
    url = "https://sealq.test" + path + (f"?{query}" if query else "")
    return sign(method, url, body, headers), sorted(headers)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_any_request_botocore_signs_verifies(drawn: tuple[SignedRequest, list[str]]) -> None:
    request, _ = drawn
    assert verifier().verify(request).account == ACCOUNT


def _flip(text: str, index: int, alphabet: str) -> str:
    """``text`` with the character at ``index`` replaced by another of ``alphabet``."""
    current = text[index]
    other = next(c for c in alphabet if c != current)
    return text[:index] + other + text[index + 1:]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.data())
def test_flipping_any_single_byte_breaks_the_signature(
    drawn: tuple[SignedRequest, list[str]], data: Any
) -> None:
    request, custom = drawn
    targets = ["method", "signature", "date"]
    if request.body:
        targets.append("body")
    if len(request.path) > 1:
        targets.append("path")
    if request.query:
        targets.append("query")
    if custom:
        targets.append("header")
    target = data.draw(st.sampled_from(targets))
    method, path, query, body = request.method, request.path, request.query, request.body
    headers = dict(request.headers)
    if target == "method":
        method = data.draw(st.sampled_from(["POST", "GET", "PUT", "DELETE"]).filter(
            lambda m: m != request.method))
    elif target == "body":
        at = data.draw(st.integers(0, len(body) - 1))
        delta = data.draw(st.integers(1, 255))
        body = body[:at] + bytes([body[at] ^ delta]) + body[at + 1:]
    elif target == "path":
        at = data.draw(st.integers(1, len(path) - 1).filter(lambda i: path[i] != "/"))
        path = _flip(path, at, "abcdefghijklmnopqrstuvwxyz0123456789")
    elif target == "query":
        at = data.draw(st.integers(0, len(query) - 1).filter(lambda i: query[i] not in "&="))
        query = _flip(query, at, "abcXYZ019")
    elif target == "header":
        name = data.draw(st.sampled_from(custom))
        actual = next(k for k in headers if k.lower() == name)
        value = headers[actual]
        at = data.draw(st.integers(0, len(value) - 1))
        headers[actual] = _flip(value, at, "abcdefghijklmnopqrstuvwxyz0123456789")
    elif target == "signature":
        auth = headers["Authorization"]
        at = data.draw(st.integers(len(auth) - 64, len(auth) - 1))
        headers["Authorization"] = _flip(auth, at, "0123456789abcdef")
    else:
        date = headers["X-Amz-Date"]
        at = data.draw(st.sampled_from([13, 14]))  # the seconds: stays inside the window
        headers["X-Amz-Date"] = _flip(date, at, "012345")
    tampered = SignedRequest(method, path, query, headers, body)
    assert tampered != request
    assert refusal(tampered).query_code == "SignatureDoesNotMatch"


# -- refusals ----------------------------------------------------------------------


def test_an_unsigned_request_is_missing_its_authentication_token() -> None:
    err = refusal(SignedRequest("POST", "/", "", {"Host": "sealq.test"}, b"{}"))
    assert (err.query_code, err.status) == ("MissingAuthenticationToken", 403)


def test_a_wrong_secret_does_not_match() -> None:
    err = refusal(sign(secret="x" * 40))
    assert (err.query_code, err.status) == ("SignatureDoesNotMatch", 403)


def test_an_unknown_key_is_an_invalid_client_token() -> None:
    err = refusal(sign(key_id="AKIAUNKNOWN000000000"))
    assert (err.query_code, err.status) == ("InvalidClientTokenId", 403)


def test_a_session_token_is_an_invalid_client_token() -> None:
    err = refusal(sign(headers={"X-Amz-Security-Token": "t"}))
    assert err.query_code == "InvalidClientTokenId"


@pytest.mark.parametrize(("region", "service"), [("eu-west-1", "sqs"), (REGION, "s3"),
                                                 (REGION, "execute-api")])
def test_a_scope_for_another_region_or_service_does_not_match(region: str, service: str) -> None:
    keys = Keys()
    err = refusal(sign(region=region, service=service), keys)
    assert (err.query_code, err.status) == ("SignatureDoesNotMatch", 403)
    assert keys.lookups == 0


@pytest.mark.parametrize("offset", [-MAX_SKEW_SECONDS - 60, MAX_SKEW_SECONDS + 60])
def test_a_request_dated_outside_the_skew_window_has_expired(offset: float) -> None:
    clock = FakeClock(datetime.datetime.now(datetime.UTC).timestamp() + offset)
    keys = Keys()
    err = refusal(sign(), keys, clock)
    assert (err.query_code, err.status) == ("RequestExpired", 400)
    assert keys.lookups == 0


@pytest.mark.parametrize("offset", [-MAX_SKEW_SECONDS + 60, MAX_SKEW_SECONDS - 60])
def test_a_request_dated_inside_the_skew_window_verifies(offset: float) -> None:
    clock = FakeClock(datetime.datetime.now(datetime.UTC).timestamp() + offset)
    assert verifier(clock=clock).verify(sign()).account == ACCOUNT


def test_a_body_other_than_the_declared_hash_does_not_match() -> None:
    request = sign(headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert refusal(request).query_code == "SignatureDoesNotMatch"
    declared = hashlib.sha256(b"{}").hexdigest()
    honest = sign(headers={"X-Amz-Content-SHA256": declared})
    assert verifier().verify(honest).account == ACCOUNT
    tampered = SignedRequest(honest.method, honest.path, "", honest.headers, b"[]")
    assert refusal(tampered).query_code == "SignatureDoesNotMatch"


def test_a_signed_header_that_was_dropped_is_an_incomplete_signature() -> None:
    request = sign(headers={"X-Amz-Target": "AmazonSQS.ListQueues"})
    err = refusal(with_headers(request, X_Amz_Target=None))
    assert (err.query_code, err.status) == ("IncompleteSignature", 400)


def test_an_unsigned_header_may_change() -> None:
    request = sign()
    assert verifier().verify(with_headers(request, X_Unsigned="anything")).account == ACCOUNT


@pytest.mark.parametrize("authorization", [
    "AWS4-HMAC-SHA1 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=00",
    "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
    "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/sqs, SignedHeaders=host, Signature=0",
    f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20260101/us-east-1/sqs/aws4_request, Signature=0",
    f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20260101/us-east-1/sqs/aws4_request, "
    "SignedHeaders=x-amz-date, Signature=00",
    f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20260101/us-east-1/sqs/aws4_request, "
    "SignedHeaders=x-amz-date;host, Signature=00",
])
def test_a_malformed_authorization_header_is_an_incomplete_signature(authorization: str) -> None:
    keys = Keys()
    err = refusal(with_headers(sign(), Authorization=authorization), keys)
    assert (err.query_code, err.status) == ("IncompleteSignature", 400)
    assert keys.lookups == 0


def test_a_missing_date_is_an_incomplete_signature() -> None:
    err = refusal(with_headers(sign(), X_Amz_Date=None))
    assert err.query_code == "IncompleteSignature"


def test_a_scope_date_other_than_the_request_date_does_not_match() -> None:
    request = sign()
    auth = request.headers["Authorization"]
    date = request.headers["X-Amz-Date"][:8]
    moved = auth.replace(f"/{date}/", "/19990101/")
    assert refusal(with_headers(request, Authorization=moved)).query_code == (
        "SignatureDoesNotMatch")


def test_refusals_name_no_secret_or_signing_key() -> None:
    request = sign(secret="y" * 40)
    err = refusal(request)
    key = derive_signing_key(SECRET, request.headers["X-Amz-Date"][:8], REGION)
    for text in (err.message, repr(err)):
        assert SECRET not in text and key.hex() not in text
