"""qpc's own files: the server address (``server.config``) and the login token (mode 0600)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from quipu.cli.qpc_common import ClientError

CONFIG_FILE = "server.config"
TOKEN_FILE = "client_token"
DEFAULT_PORT = 9443


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/qpc``, or ``~/.config/qpc``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "qpc"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str
    port: int = DEFAULT_PORT
    use_http: bool = False
    ssl_verify: str | None = None
    """A CA file to check the server's certificate with; None: not checked."""

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{'http' if self.use_http else 'https'}://{self.address}"

    @property
    def verify(self) -> str | bool:
        return self.ssl_verify or False


def load_config() -> ServerConfig | None:
    path = config_dir() / CONFIG_FILE
    try:
        data = json.loads(path.read_text())
        return ServerConfig(
            host=str(data["host"]),
            port=int(data["port"]),
            use_http=bool(data.get("use_http", False)),
            ssl_verify=data.get("ssl_verify") or None,
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as error:
        raise ClientError(
            f'{path} is not a valid qpc server config ({error}); run "qpc server config" again.'
        ) from None


def save_config(config: ServerConfig) -> None:
    _write_private(config_dir() / CONFIG_FILE, text=json.dumps(asdict(config), indent=4) + "\n")


def load_token() -> str | None:
    path = config_dir() / TOKEN_FILE
    try:
        token = json.loads(path.read_text()).get("token")
    except FileNotFoundError:
        return None
    except (ValueError, AttributeError):
        return None
    return str(token) if token else None


def save_token(token: str) -> None:
    _write_private(config_dir() / TOKEN_FILE, text=json.dumps({"token": token}) + "\n")


def forget_token() -> None:
    (config_dir() / TOKEN_FILE).unlink(missing_ok=True)


def _write_private(path: Path, *, text: str) -> None:
    """Write ``text`` readable by its owner only (the token logs anyone in who reads it)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)
