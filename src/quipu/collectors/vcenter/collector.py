"""The vCenter collector: every VM and ESXi host (connect), and their facts (inspect).

Every round trip to vCenter blocks (pyVmomi's, and the reads of ``soap``), so each runs in a
worker thread while the scanner's event loop keeps heartbeating; results are emitted from
the loop as each page arrives, and ``stop`` is honoured between pages. Facts and system keys
are described in ``facts``; what is read, and in how many round trips, in ``inventory``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from quipu import wire
from quipu.collectors.base import SUCCESS, ApiSource, Emit, SourceUnavailable
from quipu.collectors.vcenter import facts as vc_facts
from quipu.collectors.vcenter.inventory import (
    PAGE_SIZE,
    Directory,
    Retrieval,
    create_vm_view,
    directory_specs,
    vm_specs,
)
from quipu.collectors.vcenter.session import Session, call, open_session, where
from quipu.collectors.vcenter.soap import Entry

logger = logging.getLogger(__name__)

T = TypeVar("T")

VmResult = tuple[str | None, wire.SystemResult]
"""The managed object id of a VM's host (None when unknown) and the VM's result."""

TIMEOUT_VARIABLE = "QUIPU_VCENTER_TIMEOUT_S"
"""The scanner's environment may change how long one request to vCenter may take."""


def _source(job: wire.Job) -> ApiSource:
    return ApiSource.from_job(job, timeout_variable=TIMEOUT_VARIABLE)


def _label(job: wire.Job) -> str:
    return f"scanner job {job.job_id} (scan job {job.scan_id})"


@contextlib.asynccontextmanager
async def _opened(source: ApiSource) -> AsyncIterator[tuple[Session, Any]]:
    """A logged-in session and its container view of every VM; both gone afterwards."""
    session = await call(source, open_session, source)
    try:
        view = await call(source, create_vm_view, session.content)
        try:
            yield session, view
        finally:
            with contextlib.suppress(SourceUnavailable):
                await call(source, view.DestroyView)
    finally:
        await asyncio.to_thread(session.close)


async def connect(
    job: wire.Job, emit: Emit, stop: asyncio.Event, *, page_size: int = PAGE_SIZE
) -> None:
    """Log in, then report every VM (templates included) and every ESXi host as reachable."""
    source = _source(job)
    async with _opened(source) as (session, view):
        directory = await read_directory(
            session, vm_view=view, stop=stop, keep_vms=True, page_size=page_size
        )
        if directory is None or directory.vms is None:
            return
        names = directory.names
        for moid, name in directory.vms:
            await emit(source.result(system=names.key(name=name, moid=moid), status=SUCCESS))
        for moid, props in directory.hosts.items():
            key = names.key(name=props.get("name"), moid=moid)
            await emit(source.result(system=key, status=SUCCESS))
        logger.info(
            "%s: vCenter %s has %d VMs and %d hosts",
            _label(job),
            where(source),
            len(directory.vms),
            len(directory.hosts),
        )


async def inspect(
    job: wire.Job, emit: Emit, stop: asyncio.Event, *, page_size: int = PAGE_SIZE
) -> None:
    """The facts of every VM, page by page as vCenter hands them out, then of every host."""
    source = _source(job)
    async with _opened(source) as (session, view):
        directory = await read_directory(
            session, vm_view=view, stop=stop, keep_vms=False, page_size=page_size
        )
        if directory is None:
            return
        places = {moid: directory.place(moid) for moid in directory.hosts}
        # What a VM takes from its host does not depend on the host's VM count.
        host_facts = {
            moid: vc_facts.host_facts(props, place=places[moid], vm_count=0)
            for moid, props in directory.hosts.items()
        }
        vm_counts: collections.Counter[str | None] = collections.Counter()

        async def on_page(items: list[VmResult]) -> None:
            for host, result in items:
                vm_counts[host] += 1
                await emit(result)

        parse = functools.partial(
            _vm_result,
            source=source,
            directory=directory,
            host_facts=host_facts,
            now=datetime.now(UTC),
        )
        retrieval = Retrieval(
            reader=session.reader,
            specs=vm_specs(vm_view=view),
            parse=parse,
            page_size=page_size,
        )
        if not await read_pages(retrieval, source=source, stop=stop, on_page=on_page):
            return
        for moid, props in directory.hosts.items():
            found = vc_facts.host_facts(props, place=places[moid], vm_count=vm_counts[moid])
            key = directory.names.key(name=props.get("name"), moid=moid)
            await emit(source.result(system=key, status=SUCCESS, facts=found))
        logger.info(
            "%s: inspected %d VMs and %d hosts of vCenter %s",
            _label(job),
            vm_counts.total(),
            len(directory.hosts),
            where(source),
        )


def _vm_result(
    item: Entry,
    *,
    source: ApiSource,
    directory: Directory,
    host_facts: dict[str, dict[str, Any]],
    now: datetime,
) -> VmResult:
    host = item.props.get("runtime.host")
    found = vc_facts.vm_facts(item.props, host=host_facts.get(host) if host else None, now=now)
    key = directory.names.key(name=item.props.get("name"), moid=item.moid)
    return host, source.result(system=key, status=SUCCESS, facts=found)


def _itself(item: Entry) -> Entry:
    return item


async def read_directory(
    session: Session,
    *,
    vm_view: Any,
    stop: asyncio.Event,
    keep_vms: bool,
    page_size: int = PAGE_SIZE,
) -> Directory | None:
    """The directory of the inventory (see ``inventory``); None when ``stop`` cut it short."""
    directory = Directory(keep_vms=keep_vms)

    async def on_page(items: list[Entry]) -> None:
        for item in items:
            directory.add(item)

    retrieval: Retrieval[Entry] = Retrieval(
        reader=session.reader,
        specs=directory_specs(root=session.content.rootFolder, vm_view=vm_view),
        parse=_itself,
        page_size=page_size,
    )
    complete = await read_pages(retrieval, source=session.source, stop=stop, on_page=on_page)
    return directory if complete else None


async def read_pages(
    retrieval: Retrieval[T],
    *,
    source: ApiSource,
    stop: asyncio.Event,
    on_page: Callable[[list[T]], Awaitable[None]],
) -> bool:
    """Hand each page of ``retrieval`` to ``on_page`` as it arrives.

    Returns False when ``stop`` was set before the last page: the rest is then cancelled on
    the server, and never read.
    """
    if stop.is_set():
        return False
    page = await call(source, retrieval.first)
    while True:
        await on_page(page.items)
        if page.token is None:
            return True
        if stop.is_set():
            try:
                await call(source, retrieval.cancel, page.token)
            except SourceUnavailable as error:
                # Logging out frees the rest as well: the stop is not to fail on this.
                logger.info("cancelling the rest of a retrieval failed: %s", error)
            return False
        page = await call(source, retrieval.next, page.token)
