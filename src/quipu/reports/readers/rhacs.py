"""rhacs facts -> fingerprint fields (see quipu.reports.fingerprint for the contract).

An RHACS source reports one record, its Central (see quipu.collectors.rhacs.facts)::

    central.host -> name                the host the source names the Central by
    central.version -> os_version       the Central's RHACS version
    kept in the details report only: central.port, central.build_flavor,
    central.release_build, central.license_status, secured_units_current,
    secured_units_max, clusters

The Central is named by the host it was scanned at: the established discovery tool names
every Central "collected-from-rhacs", which merges two Centrals into one system. The RHACS
version goes to ``os_version`` because the deployments report has no field for a platform's
own version and the Central runs no operating system of its own that RHACS reports; the
established tool does the same with an AAP controller's version. A record without a
``central`` fact describes no system.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quipu.reports import values as v
from quipu.reports.fields import Draft


def read(facts: Mapping[str, Any], draft: Draft) -> bool | None:
    """The Central's name and version; False for facts that are not a Central's."""
    central = facts.get("central")
    if not isinstance(central, Mapping):
        return False
    name = v.text(central.get("host"))
    if name is None:
        return False
    draft.put("name", name, "central__host")
    draft.put("os_version", v.text(central.get("version")), "central__version")
    return True
