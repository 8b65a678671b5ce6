"""Paginated lists: ``{count, next, previous, results}`` with ``page`` and ``page_size``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel

T = TypeVar("T")

MAX_PAGE_SIZE = 1000
MAX_PAGE = 1_000_000_000
"""A page past this one is past any list (and its offset past what a query takes)."""


class Page(BaseModel, Generic[T]):
    count: int
    next: str | None
    previous: str | None
    results: list[T]


class PageParams(BaseModel):
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def page_params(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")] = 100,
) -> PageParams:
    return PageParams(page=page, page_size=page_size)


Paging = Annotated[PageParams, Depends(page_params)]


def page_of(request: Request, *, params: PageParams, count: int, results: Sequence[T]) -> Page[T]:
    """The page envelope, with links to the neighbouring pages that exist."""

    def link(page: int) -> str:
        return str(request.url.include_query_params(page=page, page_size=params.page_size))

    has_next = params.offset + len(results) < count
    return Page[T](
        count=count,
        next=link(params.page + 1) if has_next else None,
        previous=link(params.page - 1) if params.page > 1 else None,
        results=list(results),
    )
