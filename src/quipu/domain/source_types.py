"""What differs per source type: one row per type, read by every layer that must know."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

from quipu.domain.errors import InvalidInput
from quipu.domain.states import SourceType


class Auth(enum.StrEnum):
    """How a source type's credentials authenticate."""

    SSH = "ssh"
    """A username with a password or an SSH private key, plus privilege escalation (become)."""
    USERNAME_PASSWORD = "username_password"
    """A username and a password, sent to the source's API (HTTP basic or a login call)."""
    TOKEN = "token"
    """An API token (``auth_token``) alone, sent as a bearer token."""
    TOKEN_OR_USERNAME_PASSWORD = "token_or_username_password"
    """An API token, or a username and a password: exactly one of the two."""

    @property
    def takes_token(self) -> bool:
        return self in (Auth.TOKEN, Auth.TOKEN_OR_USERNAME_PASSWORD)

    @property
    def takes_password(self) -> bool:
        return self != Auth.TOKEN


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SourceTypeRules:
    """The rules of one source type."""

    default_port: int
    many_hosts: bool
    """True: hosts lists systems (addresses, ranges, names); False: exactly one server."""
    exclude_hosts: bool
    """exclude_hosts may be given."""
    many_credentials: bool
    """True: several credentials, tried in order per system; False: exactly one."""
    auth: Auth
    tls_options: bool
    """ssl_cert_verify, ssl_protocol, disable_ssl and proxy_url apply."""
    connection_failure_fails_task: bool
    """True: a connection scanner job that fails fails the connection task (the source could
    not be used). False: systems that cannot be reached or logged into are counted as
    unreachable or failed, and the task completes on the others."""

    @property
    def systems_are_hosts(self) -> bool:
        """The source's hosts are its systems (each one probed and inspected on its own),
        rather than a server whose API lists them."""
        return self.many_hosts


def _api_server(*, default_port: int, auth: Auth = Auth.USERNAME_PASSWORD) -> SourceTypeRules:
    """A management server reached over its HTTPS API: one host, one credential."""
    return SourceTypeRules(
        default_port=default_port,
        many_hosts=False,
        exclude_hosts=False,
        many_credentials=False,
        auth=auth,
        tls_options=True,
        connection_failure_fails_task=True,
    )


SOURCE_TYPES: Mapping[SourceType, SourceTypeRules] = {
    SourceType.NETWORK: SourceTypeRules(
        default_port=22,
        many_hosts=True,
        exclude_hosts=True,
        many_credentials=True,
        auth=Auth.SSH,
        tls_options=False,
        connection_failure_fails_task=False,
    ),
    SourceType.VCENTER: _api_server(default_port=443),
    SourceType.SATELLITE: _api_server(default_port=443),
    SourceType.OPENSHIFT: _api_server(default_port=6443, auth=Auth.TOKEN_OR_USERNAME_PASSWORD),
    SourceType.ANSIBLE: _api_server(default_port=443, auth=Auth.TOKEN_OR_USERNAME_PASSWORD),
    SourceType.RHACS: _api_server(default_port=443, auth=Auth.TOKEN),
}
"""Every source type's rules; a test checks that every SourceType has its row."""


def rules_of(source_type: str) -> SourceTypeRules:
    """The rules of ``source_type``; KeyError names an unknown type (validated upstream)."""
    return SOURCE_TYPES[SourceType(source_type)]


def source_type_of(value: str, *, field: str = "source_type") -> SourceType:
    """The source type named ``value``, or InvalidInput naming the allowed ones."""
    try:
        return SourceType(value)
    except ValueError:
        allowed = ", ".join(t.value for t in SourceType)
        raise InvalidInput(
            f"{field} must be one of {allowed} (got {value!r}).", field=field
        ) from None
