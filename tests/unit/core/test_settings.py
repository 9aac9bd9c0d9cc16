"""Settings come from the environment in one place and fail fast on bad values."""

from __future__ import annotations

import pytest

from chalicelib import settings


def test_defaults_need_no_environment() -> None:
    conf = settings.from_environ({})
    assert conf.aws_endpoint is None
    assert conf.default_kms_key == "alias/sealq-default"
    assert conf.queue_cache_ttl == 5.0
    assert conf.key_service_function == ""


def test_endpoint_aws_means_the_default_boto3_endpoints() -> None:
    assert settings.from_environ({"SEALQ_AWS_ENDPOINT": "aws"}).aws_endpoint is None
    url = "http://127.0.0.1:5000"
    assert settings.from_environ({"SEALQ_AWS_ENDPOINT": url}).aws_endpoint == url


def test_numbers_are_parsed_within_their_ranges() -> None:
    conf = settings.from_environ({"SEALQ_QUEUE_CACHE_TTL": "2.5", "SEALQ_INLINE_LIMIT": "2048"})
    assert (conf.queue_cache_ttl, conf.inline_limit) == (2.5, 2048)


@pytest.mark.parametrize(
    ("env", "text"),
    [
        ({"SEALQ_INLINE_LIMIT": "big"}, "SEALQ_INLINE_LIMIT must be an integer"),
        ({"SEALQ_INLINE_LIMIT": "5"}, "between 1024 and 1048576"),
        ({"SEALQ_QUEUE_CACHE_TTL": "soon"}, "SEALQ_QUEUE_CACHE_TTL must be a number"),
        ({"SEALQ_QUEUE_CACHE_TTL": "301"}, "between 0.0 and 300.0"),
        ({"SEALQ_HANDLER_CACHE_SIZE": "0"}, "between 1 and"),
        ({"SEALQ_ACCOUNT": "12345"}, "SEALQ_ACCOUNT must be 12 digits"),
        ({"SEALQ_BACKING_QUEUE_PREFIX": "a/b-"}, "SEALQ_BACKING_QUEUE_PREFIX must be"),
        ({"SEALQ_BACKING_QUEUE_PREFIX": "p" * 44}, "SEALQ_BACKING_QUEUE_PREFIX must be"),
    ],
)
def test_bad_values_fail_fast_with_the_variable_named(env: dict[str, str], text: str) -> None:
    with pytest.raises(settings.SettingsError, match=text):
        settings.from_environ(env)


def test_get_reads_the_environment_once_until_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALQ_QUEUES_TABLE", "first")
    assert settings.get().queues_table == "first"
    monkeypatch.setenv("SEALQ_QUEUES_TABLE", "second")
    assert settings.get().queues_table == "first"
    settings.reset()
    assert settings.get().queues_table == "second"


def test_the_backing_queue_prefix_is_the_stacks_when_set() -> None:
    assert settings.from_environ({}).backing_queue_prefix == "sealq-"
    conf = settings.from_environ({"SEALQ_BACKING_QUEUE_PREFIX": "sealq-1a2b3c4d-"})
    assert conf.backing_queue_prefix == "sealq-1a2b3c4d-"
