"""A botocore client's calls made from botocore's own parts, without its per-call machinery.

Every request sealq serves makes one backing SQS call, and through the client that
call costs more CPU than everything else sealq does for the request: a dozen event
emissions, endpoint-rule resolution, parameter validation, user-agent assembly and
a signer chosen per call, around the few steps that matter (``bench.bench_http``,
1 KiB SendMessage, one client, p50: sealq took 1.80x moto's time with the backing
call made through the client, 1.59x with it made here). :class:`LeanCalls` keeps
what the client's behaviour is made of and skips the rest:

- the request: the client's serializer, service model, endpoint URL, region and
  user agent (the body is byte-for-byte the client's), signed with botocore's
  SigV4 under the client's credentials (refreshed as the client would);
- the transport: the client's own HTTP session (pool, timeouts, proxies, TLS), except
  for a plain ``http://`` endpoint without a proxy (the local stack's moto), which
  :class:`~chalicelib.storage.plainhttp.PlainHttp` serves at half the CPU with the
  same timeouts and errors;
- retries: the client's own retry handler, through ``needs-retry`` (attempts,
  backoff, the retry quota and what counts as retryable are the client's);
- errors: botocore's parser and the client's exception classes, so every
  ``ClientError`` is the one the client raises (SQS's query-compatible codes
  included: botocore sets them on ``after-call``);
- hooks: ``before-call`` and ``before-send`` (either may answer instead),
  ``needs-retry`` and ``after-call``, with the client's arguments, so fault
  injection and observation see the same calls.

Not emitted: the parameter-building, ``request-created`` (botocore signs there and
adds its retry-count headers; Powertools tags the User-Agent), ``before-parse`` /
``response-received`` and ``after-call-error`` (client-side monitoring) events;
sealq registers none for SQS.
Parameters are not validated: the adapter builds them. Nothing is logged, so no
request body (a sealed message) can reach a log.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import create_request_object, prepare_request_dict
from botocore.endpoint import convert_to_response_dict
from botocore.exceptions import NoCredentialsError
from botocore.hooks import first_non_none_response
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from botocore.utils import get_environ_proxies

from chalicelib.storage.plainhttp import PlainHttp

_Response = tuple[Any, dict[str, Any]]  # (AWSResponse, parsed)


class LeanCalls:
    """The operations of a botocore client (JSON protocol, SigV4), called leanly.

    ``calls.send_message(QueueUrl=..., MessageBody=...)`` is
    ``client.send_message(...)``: same request, retries, result and errors.
    """

    def __init__(self, client: Any) -> None:
        meta = client.meta
        service = meta.service_model
        if service.resolved_protocol != "json" or service.signature_version != "v4":
            raise ValueError(f"{service.service_name}: only JSON-protocol SigV4 services")
        self._client = client
        self._events = meta.events
        self._service = service
        self._service_id = service.service_id.hyphenize()
        self._serializer = create_serializer("json", include_validation=False)
        self._parser = create_parser("json")
        self._endpoint_url: str = meta.endpoint_url
        self._region: str = meta.region_name
        self._config = meta.config
        self._methods: Mapping[str, str] = meta.method_to_api_mapping
        # The parts of the client botocore keeps no public name for; a botocore that
        # renames them fails here, at the first container built, not per request.
        self._signer = client._request_signer
        self._credentials = client._request_signer._credentials
        self._http = transport_for(client._endpoint.http_session, self._endpoint_url, self._config)
        self._user_agent = client._user_agent_creator  # its string is built per call

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        """``send_message`` and the like: the client's operation of that name."""
        try:
            operation = self._methods[name]
        except KeyError:
            raise AttributeError(name) from None
        return functools.partial(self.call, operation)

    def call(self, operation_name: str, /, **params: Any) -> dict[str, Any]:
        """``operation_name`` with ``params``; the parsed response, or the client's error."""
        model = self._service.operation_model(operation_name)
        context: dict[str, Any] = {
            "client_region": self._region,
            "client_config": self._config,
            "has_streaming_input": False,
            "auth_type": "v4",
        }
        request_dict = self._serializer.serialize_to_request(params, model)
        prepare_request_dict(request_dict, endpoint_url=self._endpoint_url, context=context,
                             user_agent=self._user_agent.to_string())
        event = f"{self._service_id}.{operation_name}"
        _handler, answered = self._events.emit_until_response(
            f"before-call.{event}", model=model, params=request_dict,
            request_signer=self._signer, context=context,
        )
        http, parsed = answered if answered is not None else self._send(model, request_dict)
        self._events.emit(f"after-call.{event}", http_response=http, parsed=parsed, model=model,
                          context=context)
        if http.status_code >= 300:
            code = context.get("error_code_override") or parsed.get("Error", {}).get("Code")
            raise self._client.exceptions.from_code(code)(parsed, operation_name)
        return parsed

    def _send(self, model: Any, request_dict: dict[str, Any]) -> _Response:
        """Attempts until one succeeds or the client's retry handler says stop."""
        retries = request_dict["context"].setdefault("retries", {})
        attempts = 1
        while True:
            retries["attempt"] = attempts
            response, caught = self._attempt(model, request_dict)
            delay = first_non_none_response(self._events.emit(
                f"needs-retry.{self._service_id}.{model.name}", response=response,
                endpoint=None, operation=model, attempts=attempts, caught_exception=caught,
                request_dict=request_dict,
            ))
            if delay is None or delay is False:
                break
            time.sleep(delay)
            attempts += 1
        if caught is not None:
            raise caught
        assert response is not None
        metadata = response[1].get("ResponseMetadata")
        if metadata is not None:
            metadata["RetryAttempts"] = attempts - 1
        return response

    def _attempt(
        self, model: Any, request_dict: dict[str, Any]
    ) -> tuple[_Response | None, Exception | None]:
        """One signed request (a ``before-send`` hook may answer it); as botocore's
        endpoint does, any failure to get an answer is returned, for the retry handler."""
        try:
            request = create_request_object(request_dict)
            credentials = self._credentials.get_frozen_credentials() if self._credentials else None
            if credentials is None:
                raise NoCredentialsError()
            SigV4Auth(credentials, self._service.signing_name, self._region).add_auth(request)
            for name, value in request.headers.items():  # UTF-8 on the wire, as botocore
                if isinstance(value, str):
                    request.headers[name] = value.encode("utf-8")
            prepared = request.prepare()
            http = first_non_none_response(self._events.emit(
                f"before-send.{self._service_id}.{model.name}", request=prepared))
            if http is None:
                http = self._http.send(prepared)
        except Exception as err:  # noqa: BLE001 - botocore's endpoint catches all, to retry
            return None, err
        response_dict = convert_to_response_dict(http, model)
        parsed: dict[str, Any] = self._parser.parse(response_dict, model.output_shape)
        if http.status_code >= 300:
            self._add_modeled_error_fields(response_dict, parsed)
        return (http, parsed), None

    def _add_modeled_error_fields(self, response_dict: dict[str, Any],
                                  parsed: dict[str, Any]) -> None:
        """The error's own modeled members, as botocore's endpoint adds them."""
        code = parsed.get("Error", {}).get("Code")
        shape = self._service.shape_for_error_code(code) if code is not None else None
        if shape is not None:
            parsed.update(self._parser.parse(response_dict, shape))


def transport_for(session: Any, endpoint_url: str, config: Any) -> Any:
    """What sends the requests: :class:`PlainHttp` for a plain-HTTP endpoint reached
    without a proxy, else the client's own session (TLS, CA bundle, proxies)."""
    if endpoint_url.startswith("http://") and not config.proxies and not get_environ_proxies(
        endpoint_url
    ):
        return PlainHttp(endpoint_url, connect_timeout=config.connect_timeout,
                         read_timeout=config.read_timeout,
                         max_idle=config.max_pool_connections)
    return session
