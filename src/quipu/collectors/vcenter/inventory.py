"""What is read from a vCenter and how: the property-collector specs, and paging through them.

Two retrievals, each one paged ``RetrievePropertiesEx`` followed by
``ContinueRetrievePropertiesEx`` until the token runs out, never a round trip per object:

1. the directory: folders, datacenters, clusters and ESXi hosts with their properties (a
   traversal from the root folder through each datacenter's host folder), kept whole since
   these objects are few; and every VM's name, to key systems uniquely (of which only an
   8-byte digest is kept, see ``facts.SystemNames``).
2. the VMs with their properties: each page becomes results as it arrives and is then
   dropped, so memory holds one page, whatever the VM count.

VMs are reached through a container view of the root folder, recursive and limited to VMs,
which vCenter keeps on its side: it finds VMs in any folder and in vApps at any depth.

Answers are read by ``soap``, each object as it arrives. Everything here blocks on the
network: call it in a worker thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from pyVmomi import vim, vmodl

from quipu.collectors.vcenter.facts import Place, SystemNames
from quipu.collectors.vcenter.soap import Entry

T = TypeVar("T")

PAGE_SIZE = 500
"""Objects per page (``maxObjects``): what one round trip brings, and about what memory
holds at once (a page of 500 VMs costs about a megabyte while it is read)."""

HOST_PROPERTIES = (
    "name",
    "parent",
    "hardware.systemInfo.uuid",
    "summary.hardware.numCpuPkgs",
    "summary.hardware.numCpuCores",
    "summary.hardware.numCpuThreads",
    "summary.hardware.memorySize",
    "summary.config.product.name",
    "summary.config.product.version",
)
VM_PROPERTIES = (
    "name",
    "runtime.host",
    "summary.config.uuid",
    "summary.config.template",
    "summary.config.guestFullName",
    "summary.config.numCpu",
    "summary.config.memorySizeMB",
    "summary.runtime.powerState",
    "summary.guest.hostName",
    "guest.net",
)

_PC: Any = vmodl.query.PropertyCollector
"""pyVmomi's data objects take keyword arguments its type stubs do not declare."""
_MAX_DEPTH = 64
"""Folders nest; a longer chain of parents than this is a loop, not a real inventory."""


def _traversal(name: str, kind: type, path: str, *then: str) -> Any:
    return _PC.TraversalSpec(
        name=name,
        type=kind,
        path=path,
        skip=False,
        selectSet=[_PC.SelectionSpec(name=step) for step in then],
    )


def _filter(
    start: Any, *, traversals: Sequence[Any], properties: Sequence[Any], skip: bool = False
) -> Any:
    return _PC.FilterSpec(
        objectSet=[_PC.ObjectSpec(obj=start, skip=skip, selectSet=list(traversals))],
        propSet=list(properties),
        reportMissingObjectsInResults=False,
    )


def _properties(kind: type, paths: Sequence[str]) -> Any:
    return _PC.PropertySpec(type=kind, all=False, pathSet=list(paths))


def _vm_view_filter(view: Any, paths: Sequence[str]) -> Any:
    return _filter(
        view,
        skip=True,
        traversals=[_traversal("view", vim.view.ContainerView, "view")],
        properties=[_properties(vim.VirtualMachine, paths)],
    )


def directory_specs(*, root: Any, vm_view: Any) -> list[Any]:
    """Folders, datacenters, compute resources and hosts with their properties, from the
    root folder down through each datacenter's host folder; every VM's name."""
    parented = ["name", "parent"]
    hosts = _filter(
        root,
        traversals=[
            _traversal("folder", vim.Folder, "childEntity", "folder", "host-folder", "hosts"),
            _traversal("host-folder", vim.Datacenter, "hostFolder", "folder"),
            _traversal("hosts", vim.ComputeResource, "host"),
        ],
        properties=[
            _properties(vim.Folder, parented),
            _properties(vim.Datacenter, parented),
            _properties(vim.ComputeResource, parented),
            _properties(vim.HostSystem, HOST_PROPERTIES),
        ],
    )
    return [hosts, _vm_view_filter(vm_view, ["name"])]


def vm_specs(*, vm_view: Any) -> list[Any]:
    """Every VM with the properties its facts come from."""
    return [_vm_view_filter(vm_view, VM_PROPERTIES)]


def create_vm_view(content: Any) -> Any:
    """A container view of every VM under the root folder: in any folder, in any vApp at any
    depth (a vApp's VMs are in no folder, so a traversal of folders alone misses them)."""
    return content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)


@dataclasses.dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """What one round trip brought, and the token of the rest (None when nothing is left)."""

    items: list[T]
    token: str | None


class Reader(Protocol):
    """What a retrieval needs of a property collector (``soap.PropertyReader``)."""

    def retrieve(
        self, specs: Sequence[Any], *, options: Any, each: Callable[[Entry], T | None]
    ) -> tuple[list[T], str | None]: ...

    def continue_(
        self, token: str, *, each: Callable[[Entry], T | None]
    ) -> tuple[list[T], str | None]: ...

    def cancel(self, token: str) -> None: ...


class Retrieval(Generic[T]):
    """One paged retrieval of ``specs``: ``first()``, then ``next(token)`` while a token comes.

    ``parse`` turns each object into an item, or None to leave it out, as the object
    arrives: a page is never held as objects, only as the items made of them.
    """

    def __init__(
        self,
        *,
        reader: Reader,
        specs: Sequence[Any],
        parse: Callable[[Entry], T | None],
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._reader = reader
        self._specs = list(specs)
        self._parse = parse
        self._page_size = page_size

    def first(self) -> Page[T]:
        options = _PC.RetrieveOptions(maxObjects=self._page_size)
        return Page(*self._reader.retrieve(self._specs, options=options, each=self._parse))

    def next(self, token: str) -> Page[T]:
        return Page(*self._reader.continue_(token, each=self._parse))

    def cancel(self, token: str) -> None:
        """Let vCenter drop the rest of a retrieval that will not be read."""
        self._reader.cancel(token)


class Directory:
    """The small part of an inventory, read whole: where each host sits, its properties, and
    the names of every system (``vms`` keeps each VM's id and name when asked to)."""

    def __init__(self, *, keep_vms: bool) -> None:
        self.hosts: dict[str, dict[str, Any]] = {}
        """Host properties by managed object id."""
        self.vms: list[tuple[str, str | None]] | None = [] if keep_vms else None
        self.names = SystemNames()
        self._containers: dict[str, Entry] = {}

    def add(self, item: Entry) -> None:
        if item.kind == "VirtualMachine":
            name = item.props.get("name")
            self.names.add(name)
            if self.vms is not None:
                self.vms.append((item.moid, name))
        elif item.kind == "HostSystem":
            self.names.add(item.props.get("name"))
            self.hosts[item.moid] = item.props
        else:
            self._containers[item.moid] = item

    def place(self, host_moid: str) -> Place:
        """The cluster and datacenter of a host, from the chain of its parents."""
        cluster = datacenter = None
        parent = self.hosts.get(host_moid, {}).get("parent")
        for _ in range(_MAX_DEPTH):
            container = self._containers.get(parent) if parent is not None else None
            if container is None:
                break
            if container.kind == "ClusterComputeResource":
                cluster = container.props.get("name")
            elif container.kind == "Datacenter":
                datacenter = container.props.get("name")
                break
            parent = container.props.get("parent")
        return Place(cluster=cluster, datacenter=datacenter)
