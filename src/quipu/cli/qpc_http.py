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


NO_FIELD_KEYS = ("non_field_errors", "detail", "options")
"""Keys of an error answer whose messages are about no one field: printed after ``Error``."""


def format_error_response(response: httpx.Response) -> str:
    """The server's sentences for an error answer, one a line (see ``format_error_body``)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    lines = format_error_body(body)
    if lines:
        return "\n".join(lines)
    return f"The server answered {response.status_code} {response.reason_phrase}."


def format_error_body(body: Any) -> list[str]:
    """An error answer as the established client prints it: each field's messages after the
    field's name (``hosts: ...``), ``Error: ...`` for those about no one field.

    Quipu's answers also repeat a field's message as ``detail``; that copy is left out. An
    answer with ``detail`` alone is one of Quipu's sentences, printed as it is.
    """
    if isinstance(body, list):
        return [f"Error: {message}" for message in body]
    if not isinstance(body, dict):
        return [f"Error: {body}"] if isinstance(body, str) and body else []
    error = body.get("error")
    if isinstance(error, dict) and error.get("message"):
        return [str(error["message"])]
    fields = {key: value for key, value in body.items() if key != "detail"}
    if not fields:
        detail = body.get("detail")
        return [str(detail)] if detail else []
    lines = []
    for key, messages in fields.items():
        context = "Error" if key in NO_FIELD_KEYS else key
        for message in messages if isinstance(messages, list) else [messages]:
            text = str(message)
            # Quipu's own sentences may already start with the field they are about.
            named = text.startswith((f"{key}:", f"{key} "))
            lines.append(text if named else f"{context}: {text}")
    return lines


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


def clear_objects(
    *,
    name: str | None,
    all_: bool,
    path: str,
    noun: str,
    plural: str,
    used_by: str | None = None,
) -> None:
    """``clear --name`` or ``clear --all`` for credentials, sources and scans alike.

    The sentences are the established client's. ``used_by`` names what may keep an object
    from being removed (``source`` for a credential, ``scan`` for a source); ``clear --all``
    then names each object skipped, and the other objects that use it, by id.
    """
    if name is not None and all_:
        usage_error("argument --all: not allowed with argument --name")
    if name is None and not all_:
        usage_error("one of the arguments --name --all is required")
    with connect() as api:
        if name is not None:
            found = api.find(path, name=name)
            if found is None:
                fail(f'{noun} "{name}" was not found.')
            api.request("DELETE", f"{path}{found['id']}/")
            typer.echo(f'{noun} "{name}" was removed.')
            return
        if not api.get(path, params={"page_size": 1})["count"]:
            fail(f"No {plural} exist to be removed.")
        result = api.request("POST", f"{path}bulk_delete/", json={"ids": "all"})
    text = format_bulk_deleted(result, noun=noun, plural=plural, used_by=used_by)
    if result.get("skipped"):
        # Some objects are left: an error, as the established client reports it.
        typer.echo(text, err=True)
        raise typer.Exit(1)
    typer.echo(text)


def format_bulk_deleted(
    result: Mapping[str, Any], *, noun: str, plural: str, used_by: str | None
) -> str:
    deleted, skipped = len(result.get("deleted", [])), result.get("skipped", [])
    if used_by is None:
        return f"Successfully deleted {deleted} {plural}."
    lines = [
        f"Could not delete {noun.lower()} ID {entry['id']} because it is assigned to at "
        f"least one {used_by} ({used_by} ID "
        f"{', '.join(str(i) for i in entry.get(f'{used_by}s', []))})."
        for entry in skipped
    ]
    lines.append(
        f"Successfully deleted {deleted} {plural}. {len(skipped)} {plural} could not be deleted."
    )
    return "\n".join(lines)
