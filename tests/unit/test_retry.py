"""Retry policies: what a scan may ask for, and how long a job waits before each retry."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pyVmomi import vim

from quipu.collectors.base import ApiSource
from quipu.collectors.http import ApiClient
from quipu.collectors.vcenter.session import describe
from quipu.domain.errors import InvalidInput
from quipu.domain.retry import parse_retry, retry_delay, retry_message, server_unreachable


@pytest.mark.parametrize("value", [None, {}])
def test_no_policy_means_no_retry(value: Any) -> None:
    assert parse_retry(value, field="retry") == {}
    assert retry_delay(parse_retry(value, field="retry"), 1) is None


def test_defaults_are_filled() -> None:
    assert parse_retry({"attempts": 3}, field="retry") == {
        "attempts": 3,
        "delay_s": 300,
        "backoff": 2,
    }


def test_given_values_are_kept() -> None:
    policy = {"attempts": 100, "delay_s": 1, "backoff": 10}
    assert parse_retry(policy, field="retry") == policy
    assert parse_retry({"attempts": 1, "delay_s": 2.5, "backoff": 1.5}, field="retry") == {
        "attempts": 1,
        "delay_s": 2.5,
        "backoff": 1.5,
    }


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ({"attempts": 0}, "retry.attempts", "from 1 to 100"),
        ({"attempts": 101}, "retry.attempts", "from 1 to 100"),
        ({"attempts": 2.5}, "retry.attempts", "whole number"),
        ({"attempts": True}, "retry.attempts", "whole number"),
        ({"attempts": "3"}, "retry.attempts", "whole number"),
        ({"delay_s": 60}, "retry.attempts", "required"),
        ({"attempts": 1, "delay_s": 0.5}, "retry.delay_s", "1 or more"),
        ({"attempts": 1, "delay_s": float("inf")}, "retry.delay_s", "1 or more"),
        ({"attempts": 1, "delay_s": None}, "retry.delay_s", "1 or more"),
        ({"attempts": 1, "backoff": 0.9}, "retry.backoff", "from 1 to 10"),
        ({"attempts": 1, "backoff": 11}, "retry.backoff", "from 1 to 10"),
        ({"attempts": 1, "backoff": False}, "retry.backoff", "from 1 to 10"),
        ({"attempts": 1, "tries": 2}, "retry.tries", "allowed: attempts, delay_s, backoff"),
        ([1, 2], "retry", "must be an object"),
        (3, "retry", "must be an object"),
    ],
)
def test_bad_values_name_the_field_and_what_is_allowed(value: Any, field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_retry(value, field="retry")
    assert raised.value.field == field
    assert words in str(raised.value)


def test_field_prefix_is_the_callers() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_retry({"attempts": 0}, field="scan.retry")
    assert raised.value.field == "scan.retry.attempts"


def test_delay_grows_by_backoff_until_attempts_run_out() -> None:
    policy = parse_retry({"attempts": 3, "delay_s": 600, "backoff": 2}, field="retry")
    assert [retry_delay(policy, n) for n in (1, 2, 3, 4)] == [600, 1200, 2400, None]
    assert retry_delay(policy, 0) is None


def test_backoff_one_keeps_the_delay() -> None:
    policy = parse_retry({"attempts": 2, "delay_s": 30, "backoff": 1}, field="retry")
    assert [retry_delay(policy, n) for n in (1, 2, 3)] == [30, 30, None]


SOURCE = ApiSource(
    source_name="vc", host="127.0.0.1", port=443, credential_id=1, username="u", password="p"
)


async def _http_messages() -> list[str]:
    """What the shared HTTPS client says for a refused, a timed-out and a lost connection."""
    async with ApiClient(SOURCE, concurrency=1, stop=asyncio.Event()) as client:
        return [
            client.unreachable(_refused()),
            client.unreachable(httpx.ConnectTimeout("timed out")),
            client.unreachable(httpx.ConnectError("[Errno 113] No route to host")),
        ]


def _refused() -> httpx.ConnectError:
    error = httpx.ConnectError("refused")
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return error


def test_a_server_that_did_not_answer_is_worth_a_retry() -> None:
    vcenter = [
        describe(SOURCE, error)
        for error in (
            ConnectionRefusedError(111, "Connection refused"),
            TimeoutError("timed out"),
            socket.gaierror(-2, "Name or service not known"),
            OSError(113, "No route to host"),
        )
    ]
    messages = [m for m in vcenter if m] + asyncio.run(_http_messages())
    assert len(messages) == 7
    for message in messages:
        assert server_unreachable([message]), message


def test_a_server_that_refused_the_login_is_not_retried() -> None:
    refusals = [
        describe(SOURCE, vim.fault.InvalidLogin()),
        "Satellite 127.0.0.1:443 refused the login of user 'u' (HTTP 401): check it.",
        "The scanner hit an unexpected error; see its log.",
    ]
    for message in refusals:
        assert message
        assert not server_unreachable([message]), message
    assert not server_unreachable([])
    assert not server_unreachable(["", "vCenter 127.0.0.1:443 refused the connection"])


def test_the_retry_message_names_the_sources_and_the_next_try() -> None:
    at = datetime(2026, 12, 2, 22, 40, 0, 123456, tzinfo=UTC)
    assert retry_message(source_names=["lab"], attempt=1, attempts=3, at=at) == (
        "No system of source 'lab' was reachable; retry 1 of 3 at 2026-12-02 22:40:00 UTC."
    )
    assert retry_message(source_names=["a", "b"], attempt=2, attempts=2, at=at).startswith(
        "No system of sources 'a' or 'b' was reachable; retry 2 of 2 at"
    )
