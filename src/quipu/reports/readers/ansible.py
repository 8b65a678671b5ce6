"""ansible facts -> fingerprint fields (see quipu.reports.fingerprint for the contract).

An AAP controller is one system: its record (one per source) makes one fingerprint, read
as the established server reads it::

    instance_details.system_name (ping's active_node, or the source's host) -> name
    instance_details.version (the controller's version)                     -> os_version

Every other fact (instance_count, hosts, jobs, managed_hosts, managed_hosts_source,
comparison) stays in the details report. The hosts the controller manages are facts of the
controller, not systems of their own: a host name alone is no identity another source's
system could be joined on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quipu.reports import values as v
from quipu.reports.fields import Draft

NAME_KEY = "instance_details__system_name"
VERSION_KEY = "instance_details__version"
"""Raw fact keys in the established notation: the fact, then its field."""


def read(facts: Mapping[str, Any], draft: Draft) -> bool | None:
    """The controller's name and version."""
    details = facts.get("instance_details")
    if not isinstance(details, Mapping):
        details = {}
    draft.put("name", v.text(details.get("system_name")), NAME_KEY)
    draft.put("os_version", v.text(details.get("version")), VERSION_KEY)
    return True
