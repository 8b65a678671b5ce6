"""Facts from the inspection script's output: the framing parser and one pure parser per fact.

Every parser takes what a command printed and its exit status, and answers None when the
command failed, was not run, or printed something it does not recognise: an unknown fact is
None, never a guess.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import shlex
from collections.abc import Callable
from datetime import datetime
from typing import Any

from quipu.collectors.network.framing import Section, Sections, succeeded
from quipu.collectors.network.ssh_facts import (
    parse_authorized_keys,
    parse_host_keys,
    parse_sshd_config,
)

logger = logging.getLogger(__name__)

NOT_FOUND = 127
"""Exit status of a command that is not installed."""

RED_HAT_GPG_KEYS = frozenset(
    {
        "199e2f91fd431d51",  # release key 2 (RHEL 6 onwards)
        "5326810137017186",  # release key (RHEL 5)
        "45689c882fa658e0",  # beta key 2
        "219180cddb42a60e",  # former release key
        "7514f77d8366b0d9",  # auxiliary key
    }
)

_DMI_PLACEHOLDERS = frozenset(
    {
        "",
        "none",
        "n/a",
        "not specified",
        "not present",
        "not applicable",
        "to be filled by o.e.m.",
        "default string",
        "system manufacturer",
        "system product name",
        "0123456789",
    }
)
_NULL_UUIDS = frozenset(
    {"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"}
)
_AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
_VIRT_NAMES = {"oracle": "virtualbox", "microsoft": "hyperv"}
"""systemd-detect-virt's names where the usual ones differ."""
_UNREAL_UIDS = frozenset({65534, 4294967294, 4294967295})
"""nobody and its kin, which sit above UID_MIN but are not users."""
_MAC = re.compile(r"((?:[0-9a-f]{2}:){5}[0-9a-f]{2})\s*$")
_IP_ADDR = re.compile(r"\binet6?\s+(?:addr:\s*)?([0-9A-Fa-f:.]+(?:%\w+)?)(?:/\d+)?")
_KEY_ID = re.compile(r"Key ID ([0-9a-fA-F]{16})")
_MACHINE_ID = re.compile(r"[0-9a-f]{32}")
_REDHAT_RELEASE = re.compile(r"^(?P<name>.+?)\s+release\s+(?P<version>[0-9][\w.]*)")


# --- identity -------------------------------------------------------------------------


def parse_uname(section: Section | None) -> dict[str, str | None]:
    """``uname -n -r -m -p``: host name, kernel release and processor (the machine
    architecture where ``-p`` says unknown, as on Debian)."""
    facts: dict[str, str | None] = {
        "uname_hostname": None,
        "uname_kernel": None,
        "uname_processor": None,
    }
    words = section.output.split() if (section := succeeded(section)) else []
    if len(words) < 3:
        return facts
    processor = " ".join(words[3:])
    facts["uname_hostname"] = words[0]
    facts["uname_kernel"] = words[1]
    facts["uname_processor"] = processor if processor not in ("", "unknown") else words[2]
    return facts


def parse_os_release(text: str) -> dict[str, str]:
    """os-release(5) assignments, unquoted."""
    values = {}
    for line in text.splitlines():
        key, sep, raw = line.strip().partition("=")
        if not sep or not re.fullmatch(r"[A-Z0-9_]+", key):
            continue
        try:
            words = shlex.split(raw)
        except ValueError:
            continue
        values[key] = " ".join(words)
    return values


def parse_etc_release(
    *, os_release: Section | None, redhat_release: Section | None
) -> dict[str, str | None]:
    """Name, version and release string: from /etc/os-release where it exists, else from
    /etc/redhat-release (RHEL 6 and older have only that)."""
    facts: dict[str, str | None] = {
        "etc_release_name": None,
        "etc_release_version": None,
        "etc_release_release": None,
    }
    if section := succeeded(os_release):
        values = parse_os_release(section.output)
        if values.get("NAME"):
            facts["etc_release_name"] = values["NAME"]
            facts["etc_release_version"] = values.get("VERSION_ID") or None
            facts["etc_release_release"] = values.get("PRETTY_NAME") or None
            return facts
    if section := succeeded(redhat_release):
        line = next((line.strip() for line in section.lines() if line.strip()), "")
        match = _REDHAT_RELEASE.match(line)
        if match:
            facts["etc_release_name"] = match["name"]
            facts["etc_release_version"] = match["version"]
            facts["etc_release_release"] = line
    return facts


def parse_machine_id(section: Section | None) -> str | None:
    if not (section := succeeded(section)):
        return None
    value = section.output.strip().lower()
    return value if _MACHINE_ID.fullmatch(value) and set(value) != {"0"} else None


# --- hardware -------------------------------------------------------------------------


def parse_cpuinfo(section: Section | None) -> dict[str, Any]:
    """CPU count, sockets, cores and model from /proc/cpuinfo.

    Sockets are the distinct ``physical id`` values and cores the distinct (physical id,
    core id) pairs; where any processor lacks them (many ARM and some virtual CPUs), the
    count is unknown.
    """
    facts: dict[str, Any] = {
        "cpu_count": None,
        "cpu_socket_count": None,
        "cpu_core_count": None,
        "cpu_model_name": None,
    }
    if not (section := succeeded(section)):
        return facts
    processors: list[dict[str, str]] = []
    for line in section.lines():
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep:
            continue
        if key == "processor" and value.isdigit():
            processors.append({})
        elif processors:
            processors[-1].setdefault(key, value)
    if not processors:
        return facts
    facts["cpu_count"] = len(processors)
    if all("physical id" in p for p in processors):
        facts["cpu_socket_count"] = len({p["physical id"] for p in processors})
        if all("core id" in p for p in processors):
            facts["cpu_core_count"] = len({(p["physical id"], p["core id"]) for p in processors})
    model = processors[0].get("model name") or processors[0].get("Processor")
    facts["cpu_model_name"] = model or None
    return facts


def parse_memory_bytes(section: Section | None) -> int | None:
    """MemTotal from /proc/meminfo, in bytes."""
    if not (section := succeeded(section)):
        return None
    match = re.search(r"^MemTotal:\s*(\d+)\s*kB\s*$", section.output, re.MULTILINE)
    return int(match[1]) * 1024 if match else None


def _dmi_value(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value.lower() in _DMI_PLACEHOLDERS else value


def parse_dmi_files(section: Section | None) -> dict[str, str | None]:
    """``name=value`` lines read from /sys/class/dmi/id."""
    values: dict[str, str | None] = {}
    if section is None or section.status == NOT_FOUND:
        return values
    for line in section.lines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[a-z_]+", key):
            values[key] = _dmi_value(value)
    return values


_DMIDECODE_FIELDS = {
    ("BIOS Information", "Vendor"): "bios_vendor",
    ("BIOS Information", "Version"): "bios_version",
    ("System Information", "Manufacturer"): "sys_vendor",
    ("System Information", "Product Name"): "product_name",
    ("System Information", "UUID"): "product_uuid",
    ("Chassis Information", "Asset Tag"): "chassis_asset_tag",
}


def parse_dmidecode(section: Section | None) -> dict[str, str | None]:
    """The same values from ``dmidecode -t 0 -t 1 -t 3``, named as in /sys/class/dmi/id."""
    values: dict[str, str | None] = {}
    if not (section := succeeded(section)):
        return values
    heading = ""
    for line in section.lines():
        if line and not line[0].isspace():
            heading = line.strip()
            continue
        key, sep, value = line.strip().partition(":")
        name = _DMIDECODE_FIELDS.get((heading, key.strip()))
        if sep and name and name not in values:
            values[name] = _dmi_value(value)
    return values


def _uuid(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", value):
        return None
    return None if value in _NULL_UUIDS else value


def dmi_facts(dmi: dict[str, str | None]) -> dict[str, str | None]:
    return {
        "dmi_bios_vendor": dmi.get("bios_vendor"),
        "dmi_system_uuid": _uuid(dmi.get("product_uuid")),
        "dmi_system_manufacturer": dmi.get("sys_vendor"),
        "dmi_system_product_name": dmi.get("product_name"),
    }


def cloud_provider(dmi: dict[str, str | None]) -> str | None:
    """The public cloud the firmware names, from the markers each provider sets."""
    vendor = (dmi.get("sys_vendor") or "").lower()
    bios_vendor = (dmi.get("bios_vendor") or "").lower()
    bios_version = (dmi.get("bios_version") or "").lower()
    product = (dmi.get("product_name") or "").lower()
    if "amazon" in bios_version or "amazon" in bios_vendor or vendor == "amazon ec2":
        return "aws"
    if dmi.get("chassis_asset_tag") == _AZURE_ASSET_TAG:
        return "azure"
    if product == "google compute engine" or bios_vendor == "google":
        return "gcp"
    if product.startswith("alibaba cloud") or vendor == "alibaba cloud":
        return "alibaba"
    return None


def parse_virt_what(section: Section | None) -> str | None:
    """virt-what's most general answer; its silence with status 0 means bare metal."""
    if not (section := succeeded(section)):
        return None
    lines = [line.strip() for line in section.lines() if line.strip()]
    return lines[0] if lines else "bare metal"


def virt_type(
    *, detect_virt: Section | None, virt_what: str | None, dmi: dict[str, str | None]
) -> str | None:
    """The hypervisor a virtual machine runs on; None for physical or unknown machines.

    ``systemd-detect-virt --vm`` answers without privilege (status 1 and ``none`` on
    physical machines); virt-what and the firmware strings are the fallbacks.
    """
    if detect_virt is not None and detect_virt.status in (0, 1):
        answer = detect_virt.output.strip()
        if answer == "none":
            return None
        if answer and detect_virt.ok and re.fullmatch(r"[a-z0-9_-]+", answer):
            return _VIRT_NAMES.get(answer, answer)
    if virt_what is not None and virt_what != "bare metal":
        return virt_what
    firmware = " ".join(
        value.lower() for value in (dmi.get("sys_vendor"), dmi.get("product_name")) if value
    )
    for needle, name in (
        ("vmware", "vmware"),
        ("virtualbox", "virtualbox"),
        ("kvm", "kvm"),
        ("qemu", "kvm"),
        ("xen", "xen"),
        ("microsoft corporation virtual machine", "hyperv"),
    ):
        if needle in firmware:
            return name
    return None


# --- network --------------------------------------------------------------------------


def parse_ip_addresses(section: Section | None) -> list[str] | None:
    """Addresses from ``ip -o addr`` (or ``ifconfig -a``), without loopback and link-local
    ones, which say nothing about where the system is."""
    if not (section := succeeded(section)):
        return None
    addresses: list[str] = []
    for match in _IP_ADDR.finditer(section.output):
        text = match[1].split("%", 1)[0]
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if address.is_loopback or address.is_link_local or address.is_unspecified:
            continue
        if str(address) not in addresses:
            addresses.append(str(address))
    return addresses


def parse_mac_addresses(section: Section | None) -> list[str] | None:
    """Interface hardware addresses from /sys/class/net/*/address, without all-zero ones."""
    if section is None or section.status not in (0, 1) or not section.output.strip():
        return None
    addresses: list[str] = []
    for line in section.lines():
        match = _MAC.search(line.lower())
        if match and match[1] != "00:00:00:00:00:00" and match[1] not in addresses:
            addresses.append(match[1])
    return addresses


# --- software -------------------------------------------------------------------------


def parse_rpm(section: Section | None) -> tuple[int | None, int | None]:
    """Installed rpm packages, and how many are signed with a Red Hat key."""
    if not (section := succeeded(section)):
        return None, None
    total = signed = 0
    for line in section.lines():
        if not line.strip():
            continue
        total += 1
        if any(key.lower() in RED_HAT_GPG_KEYS for key in _KEY_ID.findall(line)):
            signed += 1
    return total, signed


def parse_dpkg(section: Section | None) -> int | None:
    """Installed Debian packages, as counted in dpkg's status file (``grep -c`` exits with
    status 1 when it counts none)."""
    if section is None or section.status not in (0, 1):
        return None
    count = section.output.strip()
    return int(count) if count.isdigit() else None


def package_counts(*, rpm: Section | None, dpkg: Section | None) -> dict[str, int | None]:
    """Red Hat signed rpm packages, and all installed packages of either kind."""
    rpm_total, signed = parse_rpm(rpm)
    # A Debian system may carry an rpm binary with an empty database, and the reverse.
    counts = [count for count in (rpm_total, parse_dpkg(dpkg)) if count is not None]
    return {
        "redhat_packages_gpg_num_rh_packages": signed,
        "installed_packages_count": max(counts) if counts else None,
    }


def parse_subman_consumed(section: Section | None) -> list[dict[str, Any]] | None:
    """``subscription-manager list --consumed``: one entry per subscription, keyed by
    the field names in snake case (``Subscription Name`` as ``name``); multi-line fields
    such as ``Provides`` are lists."""
    if section is None:
        return None
    if not section.ok:
        registered = "not yet registered" not in section.output.lower()
        return None if registered or section.status == NOT_FOUND else []
    entries: list[dict[str, Any]] = []
    key: str | None = None
    for line in section.lines():
        if not line.strip() or line.startswith("+-"):
            continue
        if line[0].isspace():
            # A field's further values are indented under its first one.
            if entries and key is not None:
                value = entries[-1].get(key)
                values = value if isinstance(value, list) else [value] if value else []
                entries[-1][key] = [*values, line.strip()]
            continue
        field, sep, value = line.partition(":")
        if not sep:
            continue
        key = _snake(field)
        if key == "subscription_name":
            key = "name"
            entries.append({})
        if not entries:
            continue
        text = value.strip() or None
        entries[-1][key] = [text] if key == "provides" and text else text
    return [entry for entry in entries if entry.get("name")]


def _snake(field: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", field.strip().lower()).strip("_")


def system_user_count(*, passwd: Section | None, login_defs: Section | None) -> int | None:
    """Accounts with a user id of at least UID_MIN (from /etc/login.defs, else 1000)."""
    if not (passwd := succeeded(passwd)):
        return None
    uid_min = 1000
    if login_defs := succeeded(login_defs):
        match = re.search(r"^\s*UID_MIN\s+(\d+)", login_defs.output, re.MULTILINE)
        if match:
            uid_min = int(match[1])
    count = 0
    seen = False
    for line in passwd.lines():
        fields = line.split(":")
        if len(fields) < 7 or not fields[2].isdigit():
            continue
        seen = True
        uid = int(fields[2])
        if uid >= uid_min and uid not in _UNREAL_UIDS:
            count += 1
    return count if seen else None


def has_privilege(section: Section | None) -> bool:
    """The privileged script ran: its first command answered."""
    return section is not None and section.ok and section.output.strip().isdigit()


# --- all facts ------------------------------------------------------------------------


def extract(sections: Sections, *, marker: str, checked_in_at: datetime) -> dict[str, Any]:
    """Every fact of one system from its sections.

    A parser that trips on one system's odd output costs that fact only: the error is
    logged and the fact is None.
    """
    facts: dict[str, Any] = {}
    get = sections.get

    def add(names: tuple[str, ...], derive: Callable[[], Any]) -> None:
        try:
            value = derive()
        except Exception:
            logger.exception("cannot derive %s", ", ".join(names))
            value = dict.fromkeys(names) if len(names) > 1 else None
        if len(names) == 1:
            facts[names[0]] = value
        else:
            facts.update({name: value.get(name) for name in names})

    def dmi() -> dict[str, str | None]:
        values = parse_dmidecode(get("dmidecode"))
        values.update({k: v for k, v in parse_dmi_files(get("dmi")).items() if v is not None})
        return values

    try:
        dmi_values = dmi()
    except Exception:
        logger.exception("cannot read the DMI values")
        dmi_values = {}

    add(("uname_hostname", "uname_kernel", "uname_processor"), lambda: parse_uname(get("uname")))
    add(
        ("etc_release_name", "etc_release_version", "etc_release_release"),
        lambda: parse_etc_release(
            os_release=get("os_release"), redhat_release=get("redhat_release")
        ),
    )
    add(("etc_machine_id",), lambda: parse_machine_id(get("machine_id")))
    add(
        ("cpu_count", "cpu_socket_count", "cpu_core_count", "cpu_model_name"),
        lambda: parse_cpuinfo(get("cpuinfo")),
    )
    add(("system_memory_bytes",), lambda: parse_memory_bytes(get("meminfo")))
    add(
        (
            "dmi_bios_vendor",
            "dmi_system_uuid",
            "dmi_system_manufacturer",
            "dmi_system_product_name",
        ),
        lambda: dmi_facts(dmi_values),
    )
    add(("virt_what_type",), lambda: parse_virt_what(get("virt_what")))
    add(
        ("virt_type",),
        lambda: virt_type(
            detect_virt=get("virt"), virt_what=facts["virt_what_type"], dmi=dmi_values
        ),
    )
    add(("ifconfig_ip_addresses",), lambda: parse_ip_addresses(get("ip_addresses")))
    add(("ifconfig_mac_addresses",), lambda: parse_mac_addresses(get("mac_addresses")))
    add(
        ("redhat_packages_gpg_num_rh_packages", "installed_packages_count"),
        lambda: package_counts(rpm=get("rpm"), dpkg=get("dpkg")),
    )
    add(("subman_consumed",), lambda: parse_subman_consumed(get("subman")))
    add(("cloud_provider",), lambda: cloud_provider(dmi_values))
    add(
        ("system_user_count",),
        lambda: system_user_count(passwd=get("passwd"), login_defs=get("login_defs")),
    )
    facts["system_last_checkin_date"] = checked_in_at.isoformat()
    add(
        ("ssh_authorized_keys",),
        lambda: parse_authorized_keys(get("authorized_keys"), marker=marker),
    )
    add(("sshd_config",), lambda: parse_sshd_config(get("sshd_config")))
    add(("ssh_host_keys",), lambda: parse_host_keys(get("host_keys"), marker=marker))
    facts["has_sudo"] = has_privilege(get("privileged"))
    return facts
