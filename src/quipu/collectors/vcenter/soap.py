"""Property-collector answers read with the C XML parser: the inventory's hot path.

pyVmomi builds a typed Python object for every element of an answer, in Python: about a
millisecond a VM, most of an inventory's time. The answers of ``RetrievePropertiesEx`` and
``ContinueRetrievePropertiesEx`` are regular, so here they are read with ElementTree's pull
parser as the bytes arrive, one object at a time, into plain values:

* a simple value by its ``xsi:type``: ``int``, ``short``, ``long`` and ``byte`` become int,
  ``boolean`` bool, ``double`` and ``float`` float; anything else (strings, enumerations,
  dates) stays text, and a managed object reference becomes its managed object id;
* an ``ArrayOf...`` value, a list of its items;
* a data object, a dict from each field name to the list of that field's values (a field
  of an array type repeats its element), e.g. ``{"macAddress": ["00:50:56:..."], ...}``;
  a field inside a data object is text unless it is itself a data object.

Requests are still written by pyVmomi and sent over the session's own connections, and a
fault is still read by pyVmomi, so it is raised as the same ``vim.fault`` it would be.
"""

from __future__ import annotations

import dataclasses
import http.client
import io
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, cast
from xml.etree import ElementTree

from pyVmomi import SoapAdapter

T = TypeVar("T")

_VIM = "{urn:vim25}"
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_RETURNVAL, _OBJECTS, _TOKEN = f"{_VIM}returnval", f"{_VIM}objects", f"{_VIM}token"
_RESULT_DEPTH = 5
"""Envelope, Body, the method's response, returnval, then the result's own fields."""
_CHUNK = 64 * 1024
_INTEGERS = frozenset({"int", "short", "long", "byte"})
_REALS = frozenset({"double", "float"})

_SOAP: Any = SoapAdapter


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One object of an answer: its type name, managed object id and properties."""

    kind: str
    moid: str
    props: dict[str, Any]


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def value(element: ElementTree.Element) -> Any:
    """The plain value of a ``val`` element (see the module doc)."""
    kind = element.get(_XSI_TYPE, "").rpartition(":")[2]
    if len(element) == 0:
        text = element.text or ""
        if kind in _INTEGERS:
            return int(text)
        if kind == "boolean":
            return text in ("true", "1")
        if kind in _REALS:
            return float(text)
        return text
    if kind.startswith("ArrayOf"):
        return [value(item) for item in element]
    fields: dict[str, list[Any]] = {}
    for field in element:
        fields.setdefault(_local(field.tag), []).append(value(field))
    return fields


def entry(element: ElementTree.Element) -> Entry:
    """The entry of one ``objects`` element (an ``ObjectContent``)."""
    obj = element.find(f"{_VIM}obj")
    if obj is None:
        raise ValueError("an ObjectContent without obj")
    props = {
        prop.findtext(f"{_VIM}name") or "": value(val)
        for prop in element.iterfind(f"{_VIM}propSet")
        if (val := prop.find(f"{_VIM}val")) is not None
    }
    return Entry(kind=obj.get("type", ""), moid=obj.text or "", props=props)


def read_result(
    chunks: Iterator[bytes], each: Callable[[Entry], T | None]
) -> tuple[list[T], str | None]:
    """The items ``each`` makes of a RetrieveResult's objects, and its token.

    Each object is handed to ``each`` as soon as its closing tag arrives, then dropped, so
    the answer is never held whole.
    """
    parser: ElementTree.XMLPullParser[Any] = ElementTree.XMLPullParser(events=("start", "end"))
    items: list[T] = []
    token: str | None = None
    returnval: ElementTree.Element | None = None
    depth = 0

    def drain() -> None:
        nonlocal depth, returnval, token
        # With only start and end events asked for, each event is (its name, an element).
        events = cast("Iterator[tuple[str, ElementTree.Element]]", parser.read_events())
        for kind, element in events:
            if kind == "start":
                depth += 1
                if depth == _RESULT_DEPTH - 1 and element.tag == _RETURNVAL:
                    returnval = element
                continue
            if depth == _RESULT_DEPTH and returnval is not None:
                if element.tag == _OBJECTS:
                    item = each(entry(element))
                    if item is not None:
                        items.append(item)
                    returnval.remove(element)
                elif element.tag == _TOKEN:
                    token = element.text or None
            depth -= 1

    for chunk in chunks:
        parser.feed(chunk)
        drain()
    parser.close()
    drain()
    return items, token


def _decoded(response: http.client.HTTPResponse) -> Iterator[bytes]:
    encoding = (response.getheader("Content-Encoding") or "identity").lower()
    decompressor = None
    if encoding == "gzip":
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decompressor = zlib.decompressobj()
    while chunk := response.read(_CHUNK):
        yield chunk if decompressor is None else decompressor.decompress(chunk)
    if decompressor is not None:
        yield decompressor.flush()


class PropertyReader:
    """``RetrievePropertiesEx`` and ``ContinueRetrievePropertiesEx`` of one logged-in session,
    read as this module describes; ``CancelRetrievePropertiesEx`` through pyVmomi."""

    def __init__(self, *, stub: Any, collector: Any) -> None:
        self._stub = stub
        self._collector = collector

    def retrieve(
        self, specs: Sequence[Any], *, options: Any, each: Callable[[Entry], T | None]
    ) -> tuple[list[T], str | None]:
        return self._invoke("RetrievePropertiesEx", [list(specs), options], each)

    def continue_(
        self, token: str, *, each: Callable[[Entry], T | None]
    ) -> tuple[list[T], str | None]:
        return self._invoke("ContinueRetrievePropertiesEx", [token], each)

    def cancel(self, token: str) -> None:
        self._collector.CancelRetrievePropertiesEx(token=token)

    def _invoke(
        self, method: str, args: list[Any], each: Callable[[Entry], T | None]
    ) -> tuple[list[T], str | None]:
        info = self._collector._GetMethodInfo(method)
        body = self._stub.SerializeRequest(self._collector, info, args)
        headers = {
            "Cookie": self._stub.cookie,
            "SOAPAction": self._stub.versionId,
            "Content-Type": "text/xml; charset=UTF-8",
            "Accept-Encoding": "gzip, deflate",
        }
        connection = self._stub.GetConnection()
        try:
            connection.request("POST", self._stub.path, body, headers)
            response = connection.getresponse()
            if response.status == 200:
                found = read_result(_decoded(response), each)
            elif response.status == 500:
                raise self._fault(b"".join(_decoded(response)), info)
            else:
                raise http.client.HTTPException(f"{response.status} {response.reason}")
            response.read()
        except BaseException:
            # A connection whose answer was not read to its end cannot carry another request.
            connection.close()
            raise
        self._stub.ReturnConnection(connection)
        return found

    def _fault(self, body: bytes, info: Any) -> BaseException:
        fault = _SOAP.SoapResponseDeserializer(self._stub).Deserialize(
            io.BytesIO(body), info.result
        )
        if isinstance(fault, BaseException):
            return fault
        return http.client.HTTPException(f"500 without a SOAP fault: {body[:200]!r}")
