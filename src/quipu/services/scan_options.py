"""A scan's options: checked, merged and shown as the established server does."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from quipu.domain.errors import InvalidInput

DEFAULT_MAX_CONCURRENCY = 25
MAX_CONCURRENCY = 200
DISABLED = "disabled_optional_products"
EXTENDED = "enabled_extended_product_search"
SEARCH_DIRECTORIES = "search_directories"
OPTIONS = ("max_concurrency", DISABLED, EXTENDED)
"""The options a scan may carry; the product ones are kept for collectors."""
PRODUCTS = ("jboss_eap", "jboss_fuse", "jboss_ws")
"""The optional products a scan may leave out or search for in more places."""

# The established server's own words for refused options: its client prints them as they are.
TOO_FEW = "Ensure this value is greater than or equal to 1."
TOO_MANY = f"Ensure this value is less than or equal to {MAX_CONCURRENCY}."
NOT_A_COUNT = "Ensure this value is a positive integer."
NOT_A_BOOLEAN = "Must be a valid boolean."
NOT_A_MAP = "Invalid data. Expected a dictionary, but got {kind}."
BAD_DIRECTORIES = "search_directories must be a JSON array of valid paths"


def checked_options(given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` without its None values, or InvalidInput in the established server's words,
    naming the option by its path (``options.max_concurrency``)."""
    options = {k: v for k, v in given.items() if v is not None}
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InvalidInput(
            f"options: unknown option {unknown[0]!r}; allowed: {', '.join(OPTIONS)}.",
            field="options",
        )
    if "max_concurrency" in options:
        _check_concurrency(options["max_concurrency"])
    for name in (DISABLED, EXTENDED):
        if name in options:
            _check_products(name, options[name])
    if isinstance(options.get(EXTENDED), Mapping):
        _check_directories(options[EXTENDED].get(SEARCH_DIRECTORIES))
    return options


def _check_concurrency(value: Any) -> None:
    field = "options.max_concurrency"
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(NOT_A_COUNT, field=field)
    if value < 1:
        raise InvalidInput(TOO_FEW, field=field)
    if value > MAX_CONCURRENCY:
        raise InvalidInput(TOO_MANY, field=field)


def _check_products(name: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        kind = "list" if isinstance(value, list) else type(value).__name__
        raise InvalidInput(NOT_A_MAP.format(kind=kind), field=f"options.{name}.non_field_errors")
    for product in PRODUCTS:
        flag = value.get(product)
        if flag is not None and not isinstance(flag, bool):
            raise InvalidInput(NOT_A_BOOLEAN, field=f"options.{name}.{product}")


def _check_directories(value: Any) -> None:
    """Absolute paths only: they are searched on systems whose working directory is unknown."""
    if value is None:
        return
    if not isinstance(value, list) or not all(
        isinstance(d, str) and PurePosixPath(d).is_absolute() for d in value
    ):
        raise InvalidInput(BAD_DIRECTORIES, field=f"options.{EXTENDED}.{SEARCH_DIRECTORIES}")


def options_replaced(given: Mapping[str, Any]) -> dict[str, Any]:
    """The options a new or replaced scan keeps of ``given`` (checked).

    A product left out of ``disabled_optional_products`` is not disabled; one left out of
    ``enabled_extended_product_search`` is not searched for.
    """
    options: dict[str, Any] = {
        "max_concurrency": given.get("max_concurrency", DEFAULT_MAX_CONCURRENCY)
    }
    if DISABLED in given:
        options[DISABLED] = {p: given[DISABLED].get(p) or False for p in PRODUCTS}
    if EXTENDED in given:
        extended = {p: given[EXTENDED].get(p) or False for p in PRODUCTS}
        if given[EXTENDED].get(SEARCH_DIRECTORIES) is not None:
            extended[SEARCH_DIRECTORIES] = list(given[EXTENDED][SEARCH_DIRECTORIES])
        options[EXTENDED] = extended
    return options


def options_merged(current: Mapping[str, Any], *, given: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` options with the ``given`` ones of a partial edit (checked), as the
    established server merges them: products given change, the others stay; an empty map
    changes nothing."""
    options = dict(current)
    if "max_concurrency" in given:
        options["max_concurrency"] = given["max_concurrency"]
    disabled = given.get(DISABLED)
    if disabled:
        before = options.get(DISABLED) or dict.fromkeys(PRODUCTS, False)
        options[DISABLED] = {p: _given_or(disabled, p, before.get(p, False)) for p in PRODUCTS}
    extended = given.get(EXTENDED)
    if extended:
        searched_before = bool(options.get(EXTENDED))
        merged = dict(options.get(EXTENDED) or {})
        merged.update({p: extended[p] for p in PRODUCTS if extended.get(p) is not None})
        directories = extended.get(SEARCH_DIRECTORIES)
        # A first extended search keeps no empty directory list; a later one may clear it.
        if directories is not None and (directories or searched_before):
            merged[SEARCH_DIRECTORIES] = list(directories)
        options[EXTENDED] = merged
    return options


def _given_or(values: Mapping[str, Any], key: str, default: bool) -> bool:
    value = values.get(key)
    return default if value is None else bool(value)


def present_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Stored options as the established server shows them: every product of a product map,
    ``search_directories`` only when set."""
    shown: dict[str, Any] = {
        "max_concurrency": options.get("max_concurrency", DEFAULT_MAX_CONCURRENCY)
    }
    if options.get(DISABLED):
        shown[DISABLED] = {p: bool(options[DISABLED].get(p, False)) for p in PRODUCTS}
    if options.get(EXTENDED):
        extended = options[EXTENDED]
        shown[EXTENDED] = {p: bool(extended.get(p, False)) for p in PRODUCTS}
        if extended.get(SEARCH_DIRECTORIES) is not None:
            shown[EXTENDED][SEARCH_DIRECTORIES] = list(extended[SEARCH_DIRECTORIES])
    return shown
