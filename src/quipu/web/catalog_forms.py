"""What the catalog pages (credentials, sources, scans) share: reading their forms, paging,
and turning a service's refusal into the sentence shown on the form."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from quipu.domain.errors import InvalidInput, QuipuError
from quipu.store import Store
from quipu.web.render import page
from quipu.web.session import CSRF_FIELD, Viewer, flash

PAGE_SIZE = 20
LOOKUP_LIMIT = 1000
"""How many credentials, sources or scanners a form offers to choose from."""
_HOST_SEPARATORS = re.compile(r"[\s,]+")


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def page_number(value: str | None) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


def list_page(
    request: Request,
    viewer: Viewer,
    *,
    template: str,
    lister: Callable[..., tuple[int, Sequence[Any]]],
    search: str,
    page_no: str,
    rows: str,
    shown: Callable[[Sequence[Any]], Sequence[Any]] = lambda views: views,
    **context: Any,
) -> HTMLResponse:
    """One page of a catalog list, searched by name: ``lister`` is the service's list
    function; its views go to the template as ``rows`` (through ``shown``)."""
    number = page_number(page_no)
    count, views = lister(
        store_of(request),
        search_by_name=search.strip() or None,
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    context[rows] = shown(views)
    return page(
        request,
        template,
        viewer=viewer,
        count=count,
        search=search.strip(),
        page_no=number,
        pages=page_count(count),
        **context,
    )


def page_count(count: int) -> int:
    return max(1, -(-count // PAGE_SIZE))


class Form:
    """A submitted form's text fields (files are ignored)."""

    def __init__(self, items: Sequence[tuple[str, object]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in items:
            if isinstance(value, str) and key != CSRF_FIELD:
                self._values.setdefault(key, []).append(value)

    def raw(self, name: str) -> str:
        """The value as typed (secrets are never stripped)."""
        values = self._values.get(name)
        return values[0] if values else ""

    def text(self, name: str) -> str | None:
        """The value without surrounding spaces; None when empty."""
        return self.raw(name).strip() or None

    def secret(self, name: str) -> str | None:
        """A secret as typed; None when left empty (kept, on an edit)."""
        return self.raw(name) or None

    def checked(self, name: str) -> bool:
        return name in self._values

    def all(self, name: str) -> list[str]:
        return list(self._values.get(name, []))

    def names(self) -> list[str]:
        return list(self._values)


async def form_of(request: Request) -> Form:
    return Form(list((await request.form()).multi_items()))


def split_hosts(value: str | None) -> list[str]:
    """Hosts as qpc takes them: one per line, or separated by commas or spaces."""
    return [h for h in _HOST_SEPARATORS.split(value or "") if h]


def whole_number(value: str | None, *, field: str, allowed: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(
            f"{field} must be a whole number {allowed} (got {value!r}).", field=field
        ) from None


def decimal_number(value: str | None, *, field: str, allowed: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(
            f"{field} must be a number {allowed} (got {value!r}).", field=field
        ) from None


def ordered_ids(form: Form, *, prefix: str, field: str) -> list[int]:
    """The ids chosen in the numbered selects ``<prefix>_1``, ``<prefix>_2``... in that order
    (an empty select is skipped)."""
    numbered = sorted(
        (int(key.rsplit("_", 1)[1]), key)
        for key in form.names()
        if key.startswith(f"{prefix}_") and key.rsplit("_", 1)[1].isdigit()
    )
    ids = []
    for _, key in numbered:
        value = form.text(key)
        if value is None:
            continue
        number = whole_number(value, field=field, allowed="(an id)")
        assert number is not None
        ids.append(number)
    return ids


def id_list(values: Sequence[str], *, field: str) -> list[int]:
    ids = []
    for value in values:
        number = whole_number(value.strip() or None, field=field, allowed="(an id)")
        if number is not None:
            ids.append(number)
    return ids


@dataclass
class Refusal:
    """A service's refusal as a form shows it: at the top, and next to its field."""

    message: str
    field: str | None = None
    by_field: dict[str, str] = dataclasses.field(default_factory=dict)


def refusal(error: QuipuError, *, fields: dict[str, str] | None = None) -> Refusal:
    """``fields`` maps a service's field name to the form field that shows it."""
    message = str(error)
    name = getattr(error, "field", None)
    if not isinstance(name, str):
        return Refusal(message)
    shown = (fields or {}).get(name, name.rsplit(".", 1)[-1])
    if name.rsplit(".", 1)[-1] not in message:
        message = f"{name}: {message}"
    return Refusal(message, field=shown, by_field={shown: message})


def redirect(request: Request, url: str, *, text: str, kind: str = "notice") -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    flash(response, request, text=text, kind=kind)
    return response


def show_choices(chosen: int, available: int, *, spare: int = 2, least: int = 3) -> int:
    """How many numbered selects an ordered choice shows: those chosen and a few spare ones,
    never more than there is to choose from."""
    return max(chosen, min(available, max(chosen + spare, least)))
