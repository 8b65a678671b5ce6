"""qpc's HTTP client: the configured server, the login token, and errors as sentences."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import typer

from quipu.cli.qpc_common import ClientError, LoginRequired, fail, usage_error
from quipu.cli.qpc_config import ServerConfig, load_config, load_token

log = logging.getLogger(__name__)

LOGIN_FIRST = 'Log in with "qpc server login" first.'
PAGE_SIZE = 1000
TIMEOUT_S = 60.0


class Api:
    """Requests to the configured server, each answered with its JSON or a ClientError."""

    def __init__(self, *, config: ServerConfig, token: str | None) -> None:
        self.config = config
        self.token = token
        headers = {"Authorization": f"Token {token}"} if token else {}
        self._client = httpx.Client(
            base_url=config.base_url, verify=config.verify, headers=headers, timeout=TIMEOUT_S
        )

    def close(self) -> None:
        self._client.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The server's answer; failing to reach it or any error status is a ClientError."""
        try:
            response = self._client.request(method, path, json=json, params=params, headers=headers)
        except httpx.TransportError as error:
            fail(format_transport_error(error, config=self.config))
        if response.status_code == 401 and not path.startswith("/api/v1/token/"):
            if self.token:
                raise LoginRequired(
                    f"Your login is no longer valid (expired or logged out). {LOGIN_FIRST}"
                )
            raise LoginRequired(f"You are not logged in. {LOGIN_FIRST}")
        if response.is_error:
            fail(format_error_response(response))
        return response

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """The answer's JSON (None when empty)."""
        response = self.send(method, path, json=json, params=params)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            fail(f"The server at {self.config.address} did not answer with JSON: is it Quipu?")

    def raw(self, path: str, *, accept: str) -> bytes:
        """The body of a GET as it came (a CSV or an archive, say), asking for ``accept``."""
        return self.send("GET", path, headers={"Accept": accept}).content

    def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def all(self, path: str, *, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every item of a paginated list, page after page."""
        items: list[Any] = []
        page = 1
        while True:
            body = self.get(path, params={**(params or {}), "page": page, "page_size": PAGE_SIZE})
            if isinstance(body, list):
                return body
            items.extend(body["results"])
            if not body.get("next"):
                return items
            page += 1

    def find(self, path: str, *, name: str) -> dict[str, Any] | None:
        """The object called ``name`` in a list, or None."""
        results = self.get(path, params={"name": name})["results"]
        return next((item for item in results if item.get("name") == name), None)


def format_transport_error(error: httpx.TransportError, *, config: ServerConfig) -> str:
    reason = str(error) or type(error).__name__
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                f"The certificate of the server at {config.address} could not be verified "
                f"({cause.verify_message}); give its CA file with "
                '"qpc server config --ssl-verify CA_FILE".'
            )
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, httpx.TimeoutException):
        reason = "it did not answer in time"
    if "WRONG_VERSION_NUMBER" in reason:
        reason = "it does not speak HTTPS there; if it serves plain HTTP, add --use-http"
    return (
        f"Cannot reach the Quipu server at {config.address} ({reason}). Check that it is "
        'running, or set its address with "qpc server config --host HOST --port PORT".'
    )


def format_error_response(response: httpx.Response) -> str:
    """The server's own sentence (``detail``) for an error answer."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str) and detail:
            return detail
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return f"The server answered {response.status_code} {response.reason_phrase}."


@contextmanager
def connect(*, login: bool = True) -> Iterator[Api]:
    """An Api for the configured server; with ``login``, the saved token is required."""
    config = load_config()
    if config is None:
        raise ClientError(
            'The server is not configured yet. Run "qpc server config --host HOST '
            '--port PORT" first.'
        )
    token = load_token()
    if login and not token:
        raise LoginRequired(f"You are not logged in. {LOGIN_FIRST}")
    api = Api(config=config, token=token)
    try:
        yield api
    finally:
        api.close()


def clear_objects(*, name: str | None, all_: bool, path: str, noun: str, plural: str) -> None:
    """``clear --name`` or ``clear --all`` for credentials, sources and scans alike."""
    if (name is None) == (not all_):
        usage_error("Give --name or --all (one of them).")
    with connect() as api:
        if name is not None:
            found = api.find(path, name=name)
            if found is None:
                fail(f'{noun} "{name}" was not found.')
            api.request("DELETE", f"{path}{found['id']}/")
            typer.echo(f'{noun} "{name}" was removed.')
            return
        if not api.get(path, params={"page_size": 1})["count"]:
            typer.echo(f"No {plural} exist yet.")
            return
        result = api.request("POST", f"{path}bulk_delete/", json={"ids": "all"})
    typer.echo(result["message"])
    for skipped in result.get("skipped", []):
        typer.echo(f'{noun} "{skipped["name"]}" was not removed: {skipped["reason"]}.', err=True)
    if result.get("skipped") or result.get("missing"):
        raise typer.Exit(1)
