"""Paging through the property collector at the wire: a vCenter stand-in answers the SOAP
requests pyVmomi writes with canned pages and tokens, as vCenter does (the simulator of the
integration tests returns what it is asked for, but this pins every step down)."""

from __future__ import annotations

import asyncio
import gzip
import io
from typing import Any
from xml.etree import ElementTree

import pytest
from pyVmomi import SoapAdapter, vim, vmodl

from quipu import wire
from quipu.collectors.base import ApiSource, SourceUnavailable
from quipu.collectors.vcenter.collector import read_pages
from quipu.collectors.vcenter.inventory import Retrieval, vm_specs
from quipu.collectors.vcenter.soap import Entry, PropertyReader, read_result

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
)
TAIL = "</soapenv:Body></soapenv:Envelope>"
FAULT = (
    HEAD + "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>unknown token"
    '</faultstring><detail><InvalidArgumentFault xmlns="urn:vim25" xsi:type="InvalidArgument">'
    "<invalidProperty>token</invalidProperty></InvalidArgumentFault></detail></soapenv:Fault>"
    + TAIL
)


def vm_object(moid: str, name: str) -> str:
    return (
        f'<objects><obj type="VirtualMachine">{moid}</obj>'
        f'<propSet><name>name</name><val xsi:type="xsd:string">{name}</val></propSet>'
        "</objects>"
    )


def answer(method: str, objects: list[str], token: str | None) -> bytes:
    token_xml = f"<token>{token}</token>" if token else ""
    return (
        f'{HEAD}<{method}Response xmlns="urn:vim25"><returnval>{token_xml}{"".join(objects)}'
        f"</returnval></{method}Response>{TAIL}"
    ).encode()


class Response:
    """The part of ``http.client.HTTPResponse`` the reader uses."""

    def __init__(self, status: int, body: bytes, *, encoding: str | None = None) -> None:
        self.status = status
        self.reason = {200: "OK", 500: "Internal Server Error"}.get(status, "?")
        self._headers = {"Content-Encoding": encoding} if encoding else {}
        self._body = io.BytesIO(gzip.compress(body) if encoding == "gzip" else body)

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self._headers.get(name, default)

    def read(self, size: int = -1) -> bytes:
        return self._body.read(size)


class Vcenter:
    """A vCenter stand-in in place of pyVmomi's SOAP stub: it writes requests with a real
    stub and answers RetrievePropertiesEx with ``maxObjects`` objects at a time and a token
    for the rest. Every call is recorded."""

    def __init__(self, objects: list[str], *, encoding: str | None = None) -> None:
        self._writer = SoapAdapter.SoapStubAdapter(
            host="vc.invalid", version="vim.version.version11"
        )
        self.cookie = 'vmware_soap_session="52a1"'
        self.versionId = self._writer.versionId
        self.version = self._writer.version
        self.path = "/sdk"
        self.objects = objects
        self.encoding = encoding
        self.size = 0
        self.calls: list[tuple[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.faulty_tokens: set[str] = set()
        self.returned = 0

    # The stub's interface.

    def SerializeRequest(self, mo: Any, info: Any, args: Any) -> bytes:
        body: bytes = self._writer.SerializeRequest(mo, info, args)
        return body

    def GetConnection(self) -> Any:
        return Connection(self)

    def ReturnConnection(self, connection: Any) -> None:
        self.returned += 1

    def InvokeMethod(self, mo: Any, info: Any, args: Any) -> None:
        self.calls.append((info.wsdlName, args[0]))

    # Answers.

    def answer(self, body: bytes, headers: dict[str, str]) -> Response:
        self.headers.append(headers)
        request = ElementTree.fromstring(body).find(".//{urn:vim25}*")
        assert request is not None
        method = request.tag.rpartition("}")[2]
        if method == "RetrievePropertiesEx":
            self.size = int(request.findtext(".//{urn:vim25}maxObjects") or 0)
            self.calls.append((method, self.size))
            start = 0
        else:
            token = request.findtext("{urn:vim25}token") or ""
            self.calls.append((method, token))
            if token in self.faulty_tokens:
                return Response(500, FAULT.encode())
            start = int(token)
        end = start + self.size
        token = str(end) if end < len(self.objects) else None
        page = answer(method, self.objects[start:end], token)
        return Response(200, page, encoding=self.encoding)


class Connection:
    def __init__(self, vcenter: Vcenter) -> None:
        self._vcenter = vcenter
        self._response: Response | None = None
        self.closed = False

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        assert (method, path) == ("POST", "/sdk")
        self._response = self._vcenter.answer(body, headers)

    def getresponse(self) -> Response:
        assert self._response is not None
        return self._response

    def close(self) -> None:
        self.closed = True


def reader(vcenter: Vcenter) -> PropertyReader:
    return PropertyReader(
        stub=vcenter, collector=vmodl.query.PropertyCollector("propertyCollector", vcenter)
    )


def source() -> ApiSource:
    target = wire.Target(range="vc.example.com", ports=[443])
    return ApiSource.from_job(
        wire.Job(job_id=1, scan_id=1, kind="inspect", source_type="vcenter", targets=[target])
    )


def read_all(retrieval: Retrieval[Any], *, stop_after: int | None = None) -> list[list[Any]]:
    pages: list[list[Any]] = []

    async def scenario() -> bool:
        stop = asyncio.Event()

        async def on_page(items: list[Any]) -> None:
            pages.append(items)
            if stop_after is not None and len(pages) >= stop_after:
                stop.set()

        return await read_pages(retrieval, source=source(), stop=stop, on_page=on_page)

    complete = asyncio.run(scenario())
    assert complete is (stop_after is None)
    return pages


def moid(item: Entry) -> str:
    return item.moid


VMS = [vm_object(f"vm-{i}", f"web{i}") for i in range(7)]
SPECS = vm_specs(vm_view=vim.view.ContainerView("session[52a1]view-1"))


def test_every_page_is_read_until_the_token_runs_out() -> None:
    vcenter = Vcenter(VMS)
    pages = read_all(Retrieval(reader=reader(vcenter), specs=SPECS, parse=moid, page_size=3))
    assert pages == [["vm-0", "vm-1", "vm-2"], ["vm-3", "vm-4", "vm-5"], ["vm-6"]]
    assert vcenter.calls == [
        ("RetrievePropertiesEx", 3),
        ("ContinueRetrievePropertiesEx", "3"),
        ("ContinueRetrievePropertiesEx", "6"),
    ]
    assert vcenter.returned == 3, "each connection goes back to the session's pool"
    assert {h["Cookie"] for h in vcenter.headers} == {'vmware_soap_session="52a1"'}
    assert {h["SOAPAction"] for h in vcenter.headers} == {'"urn:vim25/6.5"'}


def test_stop_between_pages_cancels_the_rest_on_the_server() -> None:
    vcenter = Vcenter(VMS)
    pages = read_all(
        Retrieval(reader=reader(vcenter), specs=SPECS, parse=moid, page_size=3), stop_after=1
    )
    assert pages == [["vm-0", "vm-1", "vm-2"]]
    assert vcenter.calls == [("RetrievePropertiesEx", 3), ("CancelRetrievePropertiesEx", "3")]


def test_a_compressed_answer_reads_the_same() -> None:
    vcenter = Vcenter(VMS, encoding="gzip")
    pages = read_all(Retrieval(reader=reader(vcenter), specs=SPECS, parse=moid, page_size=5))
    assert pages == [["vm-0", "vm-1", "vm-2", "vm-3", "vm-4"], ["vm-5", "vm-6"]]


def test_no_matching_object_is_one_empty_page() -> None:
    pages = read_all(Retrieval(reader=reader(Vcenter([])), specs=SPECS, parse=moid))
    assert pages == [[]]


def test_parse_may_leave_objects_out() -> None:
    retrieval = Retrieval(
        reader=reader(Vcenter(VMS[:4])),
        specs=SPECS,
        parse=lambda item: None if item.moid == "vm-1" else item.moid,
        page_size=2,
    )
    assert read_all(retrieval) == [["vm-0"], ["vm-2", "vm-3"]]


def test_a_fault_is_read_by_pyvmomi_and_its_connection_dropped() -> None:
    vcenter = Vcenter(VMS)
    vcenter.faulty_tokens.add("3")
    connections: list[Connection] = []
    get = vcenter.GetConnection

    def tracked() -> Connection:
        connection: Connection = get()
        connections.append(connection)
        return connection

    vcenter.GetConnection = tracked  # type: ignore[method-assign]
    retrieval = Retrieval(reader=reader(vcenter), specs=SPECS, parse=moid, page_size=3)
    with pytest.raises(SourceUnavailable) as caught:
        read_all(retrieval)
    assert str(caught.value) == (
        "vCenter vc.example.com:443 failed a request (vmodl.fault.InvalidArgument: unknown "
        "token): see its logs."
    )
    fault = caught.value.__cause__
    assert isinstance(fault, vmodl.fault.InvalidArgument)
    assert fault.invalidProperty == "token"
    assert [c.closed for c in connections] == [False, True]
    assert vcenter.returned == 1


def test_values_become_plain_python() -> None:
    body = answer(
        "RetrievePropertiesEx",
        [
            '<objects><obj type="VirtualMachine">vm-9</obj>'
            '<propSet><name>summary.config.numCpu</name><val xsi:type="xsd:int">4</val></propSet>'
            "<propSet><name>summary.config.template</name>"
            '<val xsi:type="xsd:boolean">true</val></propSet>'
            "<propSet><name>summary.runtime.powerState</name>"
            '<val xsi:type="VirtualMachinePowerState">poweredOff</val></propSet>'
            "<propSet><name>runtime.host</name>"
            '<val xsi:type="ManagedObjectReference" type="HostSystem">host-3</val></propSet>'
            '<propSet><name>guest.net</name><val xsi:type="ArrayOfGuestNicInfo">'
            "<GuestNicInfo><macAddress>00:50:56:00:00:09</macAddress>"
            "<ipAddress>10.0.0.9</ipAddress><ipAddress>fe80::9</ipAddress>"
            "<deviceConfigId>4000</deviceConfigId><ipConfig><ipAddress>"
            "<ipAddress>10.0.0.9</ipAddress><prefixLength>24</prefixLength>"
            "</ipAddress></ipConfig></GuestNicInfo></val></propSet>"
            "</objects>"
        ],
        None,
    )
    items, token = read_result(iter([body[:100], body[100:]]), lambda item: item)
    assert token is None
    assert items == [
        Entry(
            kind="VirtualMachine",
            moid="vm-9",
            props={
                "summary.config.numCpu": 4,
                "summary.config.template": True,
                "summary.runtime.powerState": "poweredOff",
                "runtime.host": "host-3",
                "guest.net": [
                    {
                        "macAddress": ["00:50:56:00:00:09"],
                        "ipAddress": ["10.0.0.9", "fe80::9"],
                        "deviceConfigId": ["4000"],
                        "ipConfig": [
                            {"ipAddress": [{"ipAddress": ["10.0.0.9"], "prefixLength": ["24"]}]}
                        ],
                    }
                ],
            },
        )
    ]
