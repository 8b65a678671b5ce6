"""The scanner protocol's wire format: one typed definition of a job, its credentials and a
system's result, used by the server's service and routes (so the OpenAPI document describes
them), the scanner's client and agent, and the collectors.

Field names on the wire are camelCase as the contract spells them (``jobId``,
``maxProbesPerSecond``); in Python they are snake_case attributes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
)
from pydantic.alias_generators import to_camel

Status = Literal["success", "failed", "unreachable"]
"""A system's outcome in one phase."""


class Wire(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are ignored on reading,
    so a newer server can add fields an older scanner does not know."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


class Target(Wire):
    """A range of systems and the ports to try (``range``: an address, a CIDR, a span
    ``10.0.0.1-10.0.0.20``, a name, or a server's address for an API source)."""

    range: str
    ports: list[int]
    credential_id: int | None = None
    """Inspection: the credential that logged in during connection (absent otherwise)."""

    @model_serializer(mode="wrap")
    def _without_absent_credential(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and self.credential_id is None:
            data.pop("credentialId", None)
            data.pop("credential_id", None)
        return data


class Credential(Wire):
    """A credential decrypted for the scanner that claimed the job (never stored there)."""

    id: int
    name: str = ""
    cred_type: str = "network"
    username: str = ""
    password: str | None = Field(default=None, repr=False)
    ssh_key: str | None = Field(default=None, repr=False)
    """Private key text, OpenSSH or PEM."""
    ssh_passphrase: str | None = Field(default=None, repr=False)
    auth_token: str | None = Field(default=None, repr=False)
    become_method: str = "sudo"
    """sudo, su or doas."""
    become_user: str = "root"
    become_password: str | None = Field(default=None, repr=False)

    @field_validator("name", "cred_type", "username", "become_method", "become_user", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        """A field sent as null takes its default (an unset become user is root)."""
        if value is None and info.field_name is not None:
            return cls.model_fields[info.field_name].default
        return value


class Options(Wire):
    """How to run the job: its task, its source's name and connection options."""

    task_id: int | None = None
    source_name: str = ""
    max_concurrency: int = 25
    ssl_cert_verify: bool | None = None
    ssl_protocol: str | None = None
    disable_ssl: bool | None = None
    proxy_url: str | None = None


class Job(Wire):
    """One scanner job as ``GET /scanner/jobs`` hands it out."""

    job_id: int
    scan_id: int
    """The scan job it belongs to."""
    kind: str = Field(json_schema_extra={"enum": ["connect", "inspect"]})
    """connect or inspect; read as any text, so that a scanner fails a job of a kind it does
    not know saying so, instead of failing to read its claim's answer."""
    source_type: str
    targets: list[Target]
    max_probes_per_second: float = 0.0
    """The lowest non-zero of the scanner's, the subnet's and the port list's limits; 0: none."""
    credentials: list[Credential] = Field(default_factory=list)
    """In the order they are tried."""
    options: Options = Field(default_factory=Options)


class Jobs(Wire):
    jobs: list[Job]


class SystemResult(Wire):
    """One system's outcome in one phase, as a scanner uploads it (unknown fields refused)."""

    model_config = ConfigDict(extra="forbid")

    system: str = Field(min_length=1, max_length=255)
    status: Status
    port: int | None = Field(default=None, ge=1, le=65535)
    message: str = Field(default="", max_length=10_000)
    """Why it failed or could not be reached, in words an operator can act on."""
    credential_id: int | None = None
    """The credential that logged in."""
    facts: dict[str, Any] = Field(default_factory=dict)
