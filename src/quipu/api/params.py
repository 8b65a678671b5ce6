"""Bounds of the numbers a request may carry, so that a number no column can hold is a 400
naming its field, not a database error."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

MAX_INT32 = 2**31 - 1
"""The largest count a column holds (a 32-bit integer)."""
MAX_INT64 = 2**63 - 1
"""The largest id (ids are 64-bit integers)."""

Id = Annotated[int, Path(ge=1, le=MAX_INT64)]
"""An id in the path."""
BodyId = Annotated[int, Field(ge=1, le=MAX_INT64)]
"""An id in a body or a query."""
Count = Annotated[int, Field(ge=0, le=MAX_INT32)]
"""A count of systems, results or jobs."""
