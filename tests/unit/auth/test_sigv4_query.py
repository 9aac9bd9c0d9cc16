"""SigV4 in the query string (presigned requests) against botocore's ``SigV4QueryAuth``,
and every refusal it makes: the same strictness and the same codes as the header form."""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.auth.sigv4 import (
    MAX_EXPIRES_SECONDS,
    MAX_SKEW_SECONDS,
    ResolvedKey,
    Scope,
    SignedRequest,
    UnknownAccessKey,
    Verifier,
    derive_signing_key,
)
from chalicelib.clock import FakeClock
from chalicelib.errors import SqsError
from tests.presigned import presign, send_message_params

KEY_ID = "AKIAEXAMPLE000000001"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CREDENTIALS = Credentials(KEY_ID, SECRET)
ACCOUNT = "123456789012"
REGION = "us-east-1"
QUEUE = "https://sealq.test/123456789012/orders"
SIGNED_AT = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)
AUTH_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
               "X-Amz-SignedHeaders", "X-Amz-Signature")
REFUSALS = {"SignatureDoesNotMatch", "IncompleteSignature", "InvalidClientTokenId",
            "RequestExpired", "MissingAuthenticationToken"}


class Keys:
    """Signing keys of one account, derived as the real cache does; counts lookups."""

    def __init__(self) -> None:
        self.lookups = 0

    def resolve(self, scope: Scope) -> ResolvedKey:
        self.lookups += 1
        if scope.access_key_id != KEY_ID:
            raise UnknownAccessKey(scope.access_key_id)
        return ResolvedKey(ACCOUNT, derive_signing_key(SECRET, scope.date, scope.region))


def at(moment: datetime.datetime, seconds: float = 0) -> FakeClock:
    return FakeClock(moment.timestamp() + seconds)


def request_of(url: str, method: str = "GET", headers: dict[str, str] | None = None,
               body: bytes = b"") -> SignedRequest:
    """The request a presigned URL makes, as the server sees it (Host from the URL)."""
    parts = urlsplit(url)
    return SignedRequest(method, parts.path or "/", parts.query,
                         {"Host": parts.netloc, **(headers or {})}, body)


def presigned(expires: int = 60, *, signed_at: datetime.datetime = SIGNED_AT,
              credentials: Credentials = CREDENTIALS, region: str = REGION,
              service: str = "sqs", url: str = QUEUE, **kwargs: Any) -> SignedRequest:
    params = send_message_params("hello")
    return request_of(presign(url, params, credentials, region=region, expires=expires,
                              signed_at=signed_at, service=service, **kwargs))


def verify(request: SignedRequest, clock: FakeClock | None = None, keys: Keys | None = None
           ) -> str:
    verifier = Verifier(keys or Keys(), region=REGION, clock=clock or at(SIGNED_AT, 1))
    return verifier.verify(request).account


def refusal(request: SignedRequest, clock: FakeClock | None = None, keys: Keys | None = None
            ) -> SqsError:
    with pytest.raises(SqsError) as caught:
        verify(request, clock, keys)
    return caught.value


def with_query(request: SignedRequest, **changes: str | None) -> SignedRequest:
    """``request`` with query parameters replaced (None: removed), the rest as sent."""
    pairs = [(k, v) for k, v in parse_qsl(request.query, keep_blank_values=True)
             if k.replace("-", "_") not in changes]
    pairs += [(k.replace("_", "-"), v) for k, v in changes.items() if v is not None]
    return SignedRequest(request.method, request.path, urlencode(pairs, quote_via=quote),
                         request.headers, request.body)


# -- what verifies ---------------------------------------------------------------------


def test_a_presigned_query_api_url_verifies_and_names_its_account() -> None:
    request = presigned()
    assert {k for k, _ in parse_qsl(request.query)} >= set(AUTH_PARAMS)
    assert "Authorization" not in request.headers
    assert verify(request) == ACCOUNT


segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
value = st.text(alphabet="abcXYZ019-_.~ /+=&%é", max_size=10)


@st.composite
def presigned_requests(draw: Any) -> SignedRequest:
    stage = draw(st.sampled_from(["", "/prod"]))
    path = stage + "/" + "/".join(quote(s) for s in draw(st.lists(segment, max_size=3)))
    params = dict(draw(st.lists(st.tuples(segment, value), max_size=4)))
    params.setdefault("Action", draw(st.sampled_from(["SendMessage", "ListQueues"])))
    expires = draw(st.integers(1, MAX_EXPIRES_SECONDS))
    return request_of(presign("https://sealq.test" + path, params, CREDENTIALS, region=REGION,
                              expires=expires, signed_at=SIGNED_AT))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(presigned_requests())
def test_any_request_botocore_presigns_verifies(request: SignedRequest) -> None:
    assert verify(request) == ACCOUNT


def _flip(text: str, index: int) -> str:
    """``text`` with the character at ``index`` replaced by another letter or digit."""
    other = next(c for c in "qQ7zZ0" if c != text[index])
    return text[:index] + other + text[index + 1:]


def _flippable(query: str) -> list[int]:
    return [i for i, c in enumerate(query) if c not in "&="]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(presigned_requests(), st.data())
def test_flipping_any_single_byte_of_a_presigned_request_breaks_it(
    request: SignedRequest, data: Any
) -> None:
    target = data.draw(st.sampled_from(["query", "method", "path"]))
    method, path, query = request.method, request.path, request.query
    if target == "query":
        query = _flip(query, data.draw(st.sampled_from(_flippable(query))))
    elif target == "method":
        method = data.draw(st.sampled_from(["POST", "PUT", "DELETE"]))
    else:
        path = path + "x" if path.endswith("/") else _flip(path, len(path) - 1)
    tampered = SignedRequest(method, path, query, request.headers, request.body)
    assert refusal(tampered).query_code in REFUSALS


def test_every_single_byte_flip_of_every_parameter_is_refused() -> None:
    """Exhaustively, on one URL: each character of each name and value of the query string
    (operation parameters and every X-Amz-* one), the host and the method."""
    request = presigned()
    for index in _flippable(request.query):
        query = _flip(request.query, index)
        tampered = SignedRequest(request.method, request.path, query, request.headers)
        err = refusal(tampered)
        assert err.query_code in REFUSALS, (query, err)
        assert err.status in (400, 403)
    host = request.headers["Host"]
    for index in range(len(host)):
        moved = SignedRequest(request.method, request.path, request.query,
                              {"Host": _flip(host, index)})
        assert refusal(moved).query_code == "SignatureDoesNotMatch"
    posted = SignedRequest("POST", request.path, request.query, request.headers)
    assert refusal(posted).query_code == "SignatureDoesNotMatch"


# -- expiry and the clock ---------------------------------------------------------------


def test_a_presigned_url_works_until_x_amz_expires_and_is_refused_after() -> None:
    request = presigned(expires=5)
    assert verify(request, at(SIGNED_AT, 5)) == ACCOUNT
    err = refusal(request, at(SIGNED_AT, 6))
    assert (err.query_code, err.status, err.type) == (
        "SignatureDoesNotMatch", 403, "com.amazon.coral.service#InvalidSignatureException")
    assert err.message == (
        "Signature expired: 20260301T120000Z is now earlier than 20260301T120001Z "
        "(20260301T120006Z - 5 sec.)")


def test_x_amz_expires_may_reach_seven_days_and_no_further() -> None:
    week = presigned(expires=MAX_EXPIRES_SECONDS)
    assert verify(week, at(SIGNED_AT, MAX_EXPIRES_SECONDS)) == ACCOUNT
    assert refusal(week, at(SIGNED_AT, MAX_EXPIRES_SECONDS + 1)).status == 403


@pytest.mark.parametrize("expires", ["0", "604801", "-5", "1.5", "ten", ""])
def test_an_x_amz_expires_outside_one_second_to_seven_days_is_an_incomplete_signature(
    expires: str,
) -> None:
    keys = Keys()
    err = refusal(with_query(presigned(), X_Amz_Expires=expires), keys=keys)
    assert (err.query_code, err.status) == ("IncompleteSignature", 400)
    assert "X-Amz-Expires" in err.message
    assert keys.lookups == 0


def test_without_x_amz_expires_a_presigned_request_lives_as_long_as_the_skew_window() -> None:
    request = with_query(presigned(), X_Amz_Expires=None)
    # Unsigned now, so the signature no longer matches; but the clock is checked first.
    err = refusal(request, at(SIGNED_AT, MAX_SKEW_SECONDS + 1))
    assert (err.query_code, err.status) == ("SignatureDoesNotMatch", 403)
    assert err.message.startswith("Signature expired: ")
    assert err.message.endswith(" - 15 min.)")


@pytest.mark.parametrize("ahead", [MAX_SKEW_SECONDS + 60])
def test_a_presigned_request_dated_in_the_future_is_refused_as_the_header_form(
    ahead: int,
) -> None:
    keys = Keys()
    err = refusal(presigned(), at(SIGNED_AT, -ahead), keys)
    assert (err.query_code, err.status) == ("RequestExpired", 400)
    assert keys.lookups == 0
    assert verify(presigned(), at(SIGNED_AT, -(MAX_SKEW_SECONDS - 60))) == ACCOUNT


# -- refusals with the header form's codes ---------------------------------------------


def _header_signed(request: SignedRequest) -> dict[str, str]:
    wire = AWSRequest(method=request.method, url=f"https://sealq.test{request.path}",
                      headers={"Host": "sealq.test"})
    SigV4Auth(CREDENTIALS, "sqs", REGION).add_auth(wire)
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in wire.headers.items()}


def test_both_forms_in_one_request_are_refused() -> None:
    request = presigned()
    both = SignedRequest(request.method, request.path, request.query,
                         _header_signed(request), request.body)
    keys = Keys()
    err = refusal(both, keys=keys)
    assert (err.query_code, err.status) == ("SignatureDoesNotMatch", 403)
    assert err.message == ("Found both 'X-Amz-Algorithm' as a query-string param and "
                           "'Authorization' as HTTP header.")
    assert keys.lookups == 0


@pytest.mark.parametrize("missing", ["X-Amz-Credential", "X-Amz-Signature",
                                     "X-Amz-SignedHeaders", "X-Amz-Date"])
def test_a_missing_query_parameter_is_an_incomplete_signature(missing: str) -> None:
    err = refusal(with_query(presigned(), **{missing.replace("-", "_"): None}))
    assert (err.query_code, err.status) == ("IncompleteSignature", 400)
    assert f"AWS query-string parameters must include '{missing}'." in err.message
    assert err.message.endswith("Re-examine the query-string parameters.")


def test_without_x_amz_algorithm_the_request_is_missing_its_authentication_token() -> None:
    err = refusal(with_query(presigned(), X_Amz_Algorithm=None))
    assert (err.query_code, err.status) == ("MissingAuthenticationToken", 403)


@pytest.mark.parametrize(("param", "value"), [
    ("X-Amz-Algorithm", "AWS4-HMAC-SHA1"),
    ("X-Amz-Credential", f"{KEY_ID}/20260301/us-east-1/sqs"),
    ("X-Amz-Credential", f"{KEY_ID}/20260301/us-east-1/sqs/aws4_requesT"),
    ("X-Amz-SignedHeaders", "x-amz-date"),
    ("X-Amz-SignedHeaders", "Host"),
    ("X-Amz-Date", "2026-03-01T12:00:00Z"),
    ("X-Amz-Date", "20261301T120000Z"),
])
def test_a_malformed_query_parameter_is_an_incomplete_signature(param: str, value: str) -> None:
    keys = Keys()
    err = refusal(with_query(presigned(), **{param.replace("-", "_"): value}), keys=keys)
    assert (err.query_code, err.status) == ("IncompleteSignature", 400)
    assert keys.lookups == 0


def test_a_query_parameter_given_twice_is_an_incomplete_signature() -> None:
    request = presigned()
    twice = SignedRequest(request.method, request.path,
                          request.query + "&X-Amz-Signature=" + "0" * 64, request.headers)
    assert refusal(twice).query_code == "IncompleteSignature"


def test_a_wrong_secret_does_not_match_and_an_unknown_key_is_an_invalid_client_token() -> None:
    wrong = refusal(presigned(credentials=Credentials(KEY_ID, "x" * 40)))
    assert (wrong.query_code, wrong.status) == ("SignatureDoesNotMatch", 403)
    unknown = refusal(presigned(credentials=Credentials("AKIAUNKNOWN000000000", SECRET)))
    assert (unknown.query_code, unknown.status) == ("InvalidClientTokenId", 403)


@pytest.mark.parametrize(("region", "service"), [("eu-west-1", "sqs"), (REGION, "s3")])
def test_a_scope_for_another_region_or_service_does_not_match(region: str, service: str) -> None:
    keys = Keys()
    err = refusal(presigned(region=region, service=service), keys=keys)
    assert (err.query_code, err.status) == ("SignatureDoesNotMatch", 403)
    assert keys.lookups == 0


def test_a_scope_date_other_than_x_amz_date_does_not_match() -> None:
    request = presigned()
    credential = dict(parse_qsl(request.query))["X-Amz-Credential"]
    moved = with_query(request, X_Amz_Credential=credential.replace("/20260301/", "/20260228/"))
    assert refusal(moved).query_code == "SignatureDoesNotMatch"


def test_a_session_token_in_the_query_is_an_invalid_client_token() -> None:
    err = refusal(presigned(credentials=Credentials(KEY_ID, SECRET, "session-token")))
    assert (err.query_code, err.status) == ("InvalidClientTokenId", 403)


# -- the payload --------------------------------------------------------------------------


def test_an_unsigned_payload_is_accepted_only_with_no_body() -> None:
    """Query auth may sign UNSIGNED-PAYLOAD for the body (SigV4, as S3's presigned URLs do):
    nothing then covers a body, so a request that carries one is refused, not served."""
    request = presigned(url=QUEUE, unsigned_payload=True)
    assert verify(request) == ACCOUNT
    with_body = SignedRequest("GET", request.path, request.query, request.headers,
                              b"MessageBody=swapped")
    assert refusal(with_body).query_code == "SignatureDoesNotMatch"


def test_a_body_is_refused_when_the_signature_covered_an_empty_one() -> None:
    request = presigned()
    with_body = SignedRequest("GET", request.path, request.query, request.headers,
                              b"MessageBody=swapped")
    assert refusal(with_body).query_code == "SignatureDoesNotMatch"


def test_a_declared_unsigned_payload_with_a_body_does_not_match() -> None:
    """A POST signed with X-Amz-Content-SHA256: UNSIGNED-PAYLOAD verifies with no body
    (the control: method and header are the ones signed) and is refused with one."""
    declared = {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    url = presign(QUEUE, send_message_params("hello"), CREDENTIALS, region=REGION,
                  signed_at=SIGNED_AT, method="POST", headers=declared)
    assert verify(request_of(url, "POST", declared)) == ACCOUNT
    with_body = request_of(url, "POST", declared, b"Action=ListQueues")
    assert refusal(with_body).query_code == "SignatureDoesNotMatch"


def test_refusals_name_no_secret_or_signing_key() -> None:
    err = refusal(presigned(credentials=Credentials(KEY_ID, "y" * 40)))
    key = derive_signing_key(SECRET, "20260301", REGION)
    for text in (err.message, repr(err)):
        assert SECRET not in text and key.hex() not in text
