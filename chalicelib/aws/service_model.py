"""botocore's SQS service model: the operations, shapes and error shapes sealq serves.

sealq's wire tables come from it, not from lists kept by hand: the operation names,
the JSON 1.0 target prefix, the modeled error shapes, the queue attribute names and
the message system attribute names, and every input and output shape the query
protocol converts. The model is loaded on first use, never at import (it costs about
50 ms); a handler container hands over the one its backing SQS client already
loaded (:func:`adopt`), so a cold start pays for it once.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_lock = threading.Lock()
_model: Any = None


def sqs() -> Any:
    """botocore's SQS ``ServiceModel`` (2012-11-05, AWS JSON 1.0)."""
    global _model
    with _lock:
        if _model is None:
            import botocore.session

            _model = botocore.session.get_session().get_service_model("sqs")
        return _model


def adopt(model: Any) -> None:
    """Use ``model`` (a boto3 SQS client's ``meta.service_model``) unless one is loaded."""
    global _model
    with _lock:
        if _model is None and getattr(model, "service_name", None) == "sqs":
            _model = model


@functools.cache
def operations() -> frozenset[str]:
    """Every SQS operation name (``SendMessage``, ...)."""
    return frozenset(sqs().operation_names)


@functools.cache
def target_prefix() -> str:
    """What precedes the operation in ``X-Amz-Target``: ``AmazonSQS.``."""
    return f"{sqs().metadata['targetPrefix']}."


@functools.cache
def error_shapes() -> frozenset[str]:
    """The exception shapes botocore maps to ``client.exceptions.<name>``."""
    return frozenset(shape.name for shape in sqs().error_shapes)


@functools.cache
def names(enum_shape: str) -> tuple[str, ...]:
    """The values of an enum shape, without ``All`` (e.g. ``QueueAttributeName``)."""
    return tuple(value for value in sqs().shape_for(enum_shape).enum if value != "All")


def operation(name: str) -> Any:
    """The ``OperationModel`` of ``name`` (its input and output shapes)."""
    return sqs().operation_model(name)


def shape(name: str) -> Any:
    """A named shape of the model (e.g. ``Message``)."""
    return sqs().shape_for(name)
