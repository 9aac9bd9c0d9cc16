"""Answer a client in the protocol it spoke: AWS JSON 1.0 or the query protocol.

The choice is made from the request line and headers alone, before anything is
parsed, so every error (a parse error included) goes back in the client's protocol.
A query client that accepts ``application/json`` gets the query document as JSON; a
GET that names no Action gets AWS's front-door ``<UnknownOperationException/>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chalicelib.domain.results import Result
from chalicelib.errors import SqsError
from chalicelib.protocol import json10, query, shapes
from chalicelib.protocol.budget import ResponseBudget


@dataclass(frozen=True)
class Wire:
    """One request's protocol; ``queue_url`` is the queue its path names, if any."""

    is_query: bool
    query: Mapping[str, Sequence[str]]
    queue_url: str | None = None
    json_answer: bool = False  # a query request answered as JSON (Accept: application/json)
    no_action: bool = False  # a GET without an Action: no operation at all

    def parse(self, headers: Mapping[str, str], body: bytes | None) -> json10.SqsRequest:
        if self.is_query:
            return query.parse_request(headers, body, self.query, self.queue_url)
        return json10.parse_request(headers, body)

    def budget(self, limit: int) -> ResponseBudget:
        """Room for ``limit`` bytes of received messages, measured as this protocol
        writes them (:mod:`chalicelib.protocol.budget`)."""
        xml = self.is_query and not self.json_answer
        return ResponseBudget(limit, query.message_size if xml else json10.message_size)

    def success(
        self, request: json10.SqsRequest, result: Result, request_id: str,
        budget: ResponseBudget | None = None,
    ) -> json10.HttpResponse:
        """``result`` written as the action's output, in this protocol."""
        data = shapes.output(request.action, result,
                             written=budget.written if budget is not None else shapes.received)
        if self.json_answer:
            return query.json_success(request.action, data, request_id)
        if self.is_query:
            return query.success(request.action, data, request_id)
        return json10.success(data, request_id)

    def failure(self, err: SqsError, request_id: str) -> json10.HttpResponse:
        if self.json_answer:
            return query.json_failure(err, request_id)
        if self.is_query:
            return query.failure(err, request_id)
        return json10.failure(err, request_id)

    def unknown_operation(self, request_id: str) -> json10.HttpResponse:
        """The answer to a request that names no operation (:attr:`no_action`)."""
        return query.unknown_operation(request_id)


def wire_for(
    method: str,
    headers: Mapping[str, str],
    query_params: Mapping[str, Sequence[str]] | None = None,
    queue_url: str | None = None,
) -> Wire:
    """JSON 1.0 when ``X-Amz-Target`` or the JSON content type says so; else query for
    a form-encoded POST or a request with ``Action`` in its query string (or any GET);
    anything else is answered as JSON 1.0, as before."""
    params = query_params or {}
    is_query = not json10.is_json_request(headers) and query.is_query_request(
        method, headers, params
    )
    return Wire(is_query, params, queue_url,
                json_answer=is_query and query.accepts_json(headers),
                no_action=method.upper() == "GET" and "Action" not in params)
