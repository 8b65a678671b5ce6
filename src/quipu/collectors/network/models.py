"""What the SSH collectors take and give: a credential, and one system's result in one phase."""

from __future__ import annotations

import dataclasses
from typing import Any

SUCCESS = "success"
FAILED = "failed"
UNREACHABLE = "unreachable"


@dataclasses.dataclass(frozen=True)
class Credential:
    """A network credential as a scanner job carries it, decrypted for this scanner only."""

    id: int
    name: str
    username: str
    password: str | None = dataclasses.field(default=None, repr=False)
    ssh_key: str | None = dataclasses.field(default=None, repr=False)
    """Private key text, OpenSSH or PEM."""
    ssh_passphrase: str | None = dataclasses.field(default=None, repr=False)
    become_method: str = "sudo"
    """sudo, su or doas."""
    become_user: str = "root"
    become_password: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Credential:
        """Read the camelCase form of the scanner API; absent or null fields take defaults."""
        return cls(
            id=int(data["id"]),
            name=str(data.get("name") or ""),
            username=str(data["username"]),
            password=data.get("password") or None,
            ssh_key=data.get("sshKey") or None,
            ssh_passphrase=data.get("sshPassphrase") or None,
            become_method=data.get("becomeMethod") or "sudo",
            become_user=data.get("becomeUser") or "root",
            become_password=data.get("becomePassword") or None,
        )


@dataclasses.dataclass(frozen=True)
class SystemResult:
    """One system's outcome in one phase, uploaded as it is."""

    system: str
    port: int
    status: str
    """success, failed or unreachable."""
    message: str = ""
    """Why it failed or could not be reached, in words an operator can act on."""
    credential_id: int | None = None
    """The credential that logged in."""
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "port": self.port,
            "status": self.status,
            "message": self.message,
            "credentialId": self.credential_id,
            "facts": self.facts,
        }
