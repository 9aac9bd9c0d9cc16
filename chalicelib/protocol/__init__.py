"""The SQS wire layer: AWS JSON 1.0 parsing and responses, errors, MD5s, validation.

Pure code: no AWS calls, no storage. Error constructors live in
``chalicelib.protocol.errors`` (``from chalicelib.protocol import errors``).
"""

from . import errors
from .errors import SqsError, kms_error
from .json10 import (
    CONTENT_TYPE,
    OPERATIONS,
    HttpResponse,
    SqsRequest,
    failure,
    invalid_value,
    is_json_request,
    new_request_id,
    opt_int,
    opt_list,
    opt_object,
    opt_str,
    opt_str_list,
    opt_str_map,
    parse_request,
    require_int,
    require_str,
    success,
)
from .md5 import md5_of_attributes, md5_of_body, md5_of_system_attributes
from .validation import (
    check_batch_size,
    message_size,
    parse_message_attributes,
    parse_message_system_attributes,
    parse_queue_url,
    serialize_message_attributes,
    validate_batch_entries,
    validate_fifo_id,
    validate_message_body,
    validate_queue_name,
    validate_receive_attempt_id,
    validate_tag_keys,
    validate_tags,
)

__all__ = [
    "CONTENT_TYPE",
    "OPERATIONS",
    "HttpResponse",
    "SqsError",
    "SqsRequest",
    "check_batch_size",
    "errors",
    "failure",
    "invalid_value",
    "is_json_request",
    "kms_error",
    "md5_of_attributes",
    "md5_of_body",
    "md5_of_system_attributes",
    "message_size",
    "new_request_id",
    "opt_int",
    "opt_list",
    "opt_object",
    "opt_str",
    "opt_str_list",
    "opt_str_map",
    "parse_message_attributes",
    "parse_message_system_attributes",
    "parse_queue_url",
    "parse_request",
    "require_int",
    "require_str",
    "serialize_message_attributes",
    "success",
    "validate_batch_entries",
    "validate_fifo_id",
    "validate_message_body",
    "validate_queue_name",
    "validate_receive_attempt_id",
    "validate_tag_keys",
    "validate_tags",
]
