"""Fact parsers on recorded script outputs (Debian lab hosts) and hand-written RHEL ones:
framing, each fact, and the missing, garbled and failed cases that must give None."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from quipu.collectors.network import facts, framing, script, ssh_facts
from quipu.collectors.network.framing import Section
from quipu.wire import Credential, SystemResult

DATA = Path(__file__).parent / "data" / "facts"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
M = "QUIPU-0123456789abcdef01234567"

# Fingerprints as ``ssh-keygen -lf`` printed them for the keys in the recordings.
LAB_ADMIN_KEY = "SHA256:TY6YKaZgh8Fodaflqf9hGcNQYLHkvyG/lXpcJ2vZ6bI"
LAB_HOST_KEY = "SHA256:zoeVQJfLZPCmmTTzvXZ4kA8lyqUCz3ReloN+Nua5o+o"
ALICE_KEY = "SHA256:pVxgQIztnJXVe09STmlxoFVy/L3SSIJqQndeoYf+crI"
BACKUP_KEY = "SHA256:dQstWuQ+roz4MX2WBQjLGgU3mPorteBZf1xB+GLrJ98"
RHEL_ECDSA_HOST_KEY = "SHA256:AlF1yIBtFWOcebSlXXs+O28MSLxv6ODyJoeHW+72VBM"
RHEL_ED25519_HOST_KEY = "SHA256:SaKsZ2sQb+AYEOSBkijqTxaZLWBE/NCg/SwCbwSegbg"
ALICE_PUB = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILOuRCmpqNLKn/PZQP2N22778yWgk1IPz5RFtCa5Znz1 alice@laptop"
)


def recorded(name: str) -> tuple[str, str]:
    """A recording's text and the marker of the run that printed it."""
    text = (DATA / name).read_text()
    return text, text.split(" ", 1)[0]


def facts_of(name: str) -> dict[str, Any]:
    text, marker = recorded(name)
    sections = framing.parse_sections(text, marker=marker)
    return facts.extract(sections, marker=marker, checked_in_at=NOW)


def section(output: str, status: int = 0, name: str = "s") -> Section:
    return Section(name, output, status)


def frame(name: str, output: str, status: int = 0, marker: str = M) -> str:
    return f"{marker} begin {name}\n{output}\n{marker} end {name} {status}\n"


# --- framing ----------------------------------------------------------------------------


def test_every_command_of_the_script_is_framed_in_a_recording() -> None:
    text, marker = recorded("debian12-lab-sudo.txt")
    sections = framing.parse_sections(text, marker=marker)
    expected = {command.name for command in script.COMMANDS} | {script.PRIVILEGED}
    assert set(sections) == expected


def test_a_failing_command_keeps_its_status_and_spoils_nothing_else() -> None:
    text = frame("a", "one") + frame("b", "cat: /etc/redhat-release: missing", 1) + frame("c", "3")
    sections = framing.parse_sections(text, marker=M)
    assert [(s.name, s.output, s.status) for s in sections.values()] == [
        ("a", "one", 0),
        ("b", "cat: /etc/redhat-release: missing", 1),
        ("c", "3", 0),
    ]


def test_marker_like_text_in_an_output_does_not_end_its_section() -> None:
    tricky = "\n".join(
        [
            "QUIPU-ffffffffffffffffffffffff end a 0",
            f"{M} end other 0",
            f"{M} end a notanumber",
            f"x {M} end a 0",
            "last line",
        ]
    )
    sections = framing.parse_sections(frame("a", tricky) + frame("b", "fine"), marker=M)
    assert sections["a"].output == tricky
    assert sections["b"] == Section("b", "fine", 0)


def test_output_without_a_final_newline_keeps_its_last_line() -> None:
    # The framing prints a newline before the end line, so "abc" (no newline) arrives as
    # "abc\n<end>" and "abc\n" as "abc\n\n<end>".
    text = f"{M} begin a\nabc\n{M} end a 0\n{M} begin b\nabc\n\n{M} end b 0\n"
    sections = framing.parse_sections(text, marker=M)
    assert sections["a"].output == sections["b"].output == "abc"


def test_a_section_cut_short_is_dropped_and_the_next_one_parsed() -> None:
    text = f"{M} begin a\npartial output\n" + frame("b", "whole")
    sections = framing.parse_sections(text, marker=M)
    assert list(sections) == ["b"]


def test_the_first_complete_section_of_a_name_wins() -> None:
    privileged = frame("dmi", "product_uuid=4231a6b4-5c2d-8e7f-1a2b-3c4d5e6f7a8b")
    fallback = frame("dmi", "sys_vendor=VMware, Inc.")
    sections = framing.parse_sections(privileged + fallback, marker=M)
    assert sections["dmi"].output.startswith("product_uuid")


@pytest.mark.parametrize(
    "text", ["", "garbage\nno markers at all\n", frame("a", "x", marker="QUIPU-other")]
)
def test_text_without_the_runs_marker_has_no_sections(text: str) -> None:
    assert framing.parse_sections(text, marker=M) == {}


def test_no_section_at_all_gives_every_fact_none_but_the_checkin() -> None:
    found = facts.extract({}, marker=M, checked_in_at=NOW)
    assert found.pop("system_last_checkin_date") == NOW.isoformat()
    assert found.pop("has_sudo") is False
    assert set(found.values()) == {None}


# --- recordings -------------------------------------------------------------------------


def test_debian_lab_host_inspected_with_sudo() -> None:
    found = facts_of("debian12-lab-sudo.txt")
    assert found["uname_hostname"] == "lab-02"
    assert found["uname_kernel"] == "6.18.44-fc-v657"
    assert found["uname_processor"] == "x86_64"
    assert found["etc_release_name"] == "Debian GNU/Linux"
    assert found["etc_release_version"] == "12"
    assert found["etc_release_release"] == "Debian GNU/Linux 12 (bookworm)"
    assert found["etc_machine_id"] == "e59db725bb10d68dfbe81c9f1dec6e83"
    assert (found["cpu_count"], found["cpu_socket_count"], found["cpu_core_count"]) == (2, 1, 2)
    assert found["cpu_model_name"] == "AMD EPYC"
    assert found["system_memory_bytes"] == 24684092 * 1024
    assert found["installed_packages_count"] == 772
    assert found["redhat_packages_gpg_num_rh_packages"] is None
    assert found["subman_consumed"] is None
    assert found["virt_what_type"] is None
    assert found["virt_type"] == "kvm"
    assert found["ifconfig_ip_addresses"] == ["192.0.2.2", "fd00::2"]
    assert found["ifconfig_mac_addresses"] == [
        "02:fc:00:00:00:01",
        "6e:a6:ef:90:c6:47",
        "32:8c:f1:9a:70:94",
    ]
    assert found["system_user_count"] == 3
    assert found["dmi_system_uuid"] is None
    assert found["cloud_provider"] is None
    assert found["has_sudo"] is True
    assert found["ssh_authorized_keys"] == {
        "quipu-admin": [
            {
                "file": "/home/quipu-admin/.ssh/authorized_keys",
                "type": "ssh-ed25519",
                "fingerprint": LAB_ADMIN_KEY,
                "comment": None,
                "options": [],
            }
        ]
    }
    assert found["ssh_host_keys"] == [
        {
            "file": "/tmp/devlab/lab/hosts/002/ssh_host_ed25519_key.pub",
            "type": "ssh-ed25519",
            "fingerprint": LAB_HOST_KEY,
        }
    ]
    config = found["sshd_config"]
    assert config["listenaddress"] == ["127.0.213.2:22213"]
    assert config["hostkey"] == ["/tmp/devlab/lab/hosts/002/ssh_host_ed25519_key"]
    assert config["passwordauthentication"] == "yes"
    assert config["authorizedkeysfile"] == ".ssh/authorized_keys"


def test_debian_lab_host_inspected_without_privilege() -> None:
    found = facts_of("debian12-lab-user.txt")
    assert found["has_sudo"] is False
    assert found["uname_hostname"] == "lab-02"
    assert found["sshd_config"] is None
    assert found["virt_what_type"] is None
    # Unprivileged, the host keys come from the default paths and other users' keys are
    # out of reach.
    assert {key["file"] for key in found["ssh_host_keys"]} == {
        "/etc/ssh/ssh_host_ecdsa_key.pub",
        "/etc/ssh/ssh_host_ed25519_key.pub",
        "/etc/ssh/ssh_host_rsa_key.pub",
    }
    assert all(key["fingerprint"].startswith("SHA256:") for key in found["ssh_host_keys"])
    assert found["ssh_authorized_keys"] == {}
    assert found["cpu_count"] == 2


def test_rhel9_on_vmware_inspected_with_sudo() -> None:
    found = facts_of("rhel9-vmware-sudo.txt")
    assert found["uname_hostname"] == "rhel9-db01.example.com"
    assert found["uname_processor"] == "x86_64"
    assert found["etc_release_name"] == "Red Hat Enterprise Linux"
    assert found["etc_release_version"] == "9.3"
    assert found["etc_release_release"] == "Red Hat Enterprise Linux 9.3 (Plow)"
    assert (found["cpu_count"], found["cpu_socket_count"], found["cpu_core_count"]) == (4, 2, 4)
    assert found["cpu_model_name"] == "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"
    assert found["system_memory_bytes"] == 7865052 * 1024
    assert found["dmi_bios_vendor"] == "VMware, Inc."
    assert found["dmi_system_manufacturer"] == "VMware, Inc."
    assert found["dmi_system_product_name"] == "VMware7,1"
    assert found["dmi_system_uuid"] == "4231a6b4-5c2d-8e7f-1a2b-3c4d5e6f7a8b"
    assert found["virt_what_type"] == "vmware"
    assert found["virt_type"] == "vmware"
    assert found["cloud_provider"] is None
    assert found["ifconfig_ip_addresses"] == ["10.1.20.31", "10.1.20.32", "2001:db8:20::31"]
    assert found["ifconfig_mac_addresses"] == ["00:50:56:9a:1b:2c", "00:50:56:9a:7d:e0"]
    assert found["redhat_packages_gpg_num_rh_packages"] == 4
    assert found["installed_packages_count"] == 8
    assert found["system_user_count"] == 3
    assert found["has_sudo"] is True
    consumed = found["subman_consumed"]
    assert [entry["name"] for entry in consumed] == [
        "Red Hat Enterprise Linux Server, Standard (Physical or Virtual Nodes)",
        "Red Hat Satellite Infrastructure Subscription",
    ]
    assert consumed[0]["provides"] == [
        "Red Hat Enterprise Linux for x86_64",
        "Red Hat Enterprise Linux Server",
    ]
    assert consumed[0]["sku"] == "RH00004"
    assert consumed[0]["pool_id"] == "8a85f99c7d76f2fd017d96c411c70667"
    assert consumed[0]["roles"] is None
    assert consumed[1]["provides_management"] == "Yes"
    assert consumed[1]["ends"] == "01/14/2025"
    keys = found["ssh_authorized_keys"]
    assert set(keys) == {"alice", "backup"}
    assert keys["alice"] == [
        {
            "file": "/home/alice/.ssh/authorized_keys",
            "type": "ssh-ed25519",
            "fingerprint": ALICE_KEY,
            "comment": "alice@laptop",
            "options": [],
        }
    ]
    assert keys["backup"] == [
        {
            "file": "/home/backup/.ssh/authorized_keys",
            "type": "ssh-rsa",
            "fingerprint": BACKUP_KEY,
            "comment": "backup job",
            "options": [
                'from="10.1.20.0/24"',
                'command="/usr/local/bin/backup --serve \\"nightly, full\\""',
                "no-pty",
                "no-port-forwarding",
            ],
        }
    ]
    assert [(k["type"], k["fingerprint"]) for k in found["ssh_host_keys"]] == [
        ("ecdsa-sha2-nistp256", RHEL_ECDSA_HOST_KEY),
        ("ssh-ed25519", RHEL_ED25519_HOST_KEY),
    ]
    config = found["sshd_config"]
    assert config["permitrootlogin"] == "without-password"
    assert config["acceptenv"] == ["LANG", "LC_ALL"]
    assert config["listenaddress"] == ["[::]:22", "0.0.0.0:22"]
    assert config["subsystem"] == ["sftp /usr/libexec/openssh/sftp-server"]


def test_rhel6_on_kvm_falls_back_to_redhat_release_dmidecode_and_ifconfig() -> None:
    found = facts_of("rhel6-kvm-sudo.txt")
    assert found["etc_release_name"] == "Red Hat Enterprise Linux Server"
    assert found["etc_release_version"] == "6.10"
    assert found["etc_release_release"] == "Red Hat Enterprise Linux Server release 6.10 (Santiago)"
    assert found["etc_machine_id"] is None
    assert found["cpu_count"] == 2
    assert found["cpu_socket_count"] is None
    assert found["cpu_core_count"] is None
    assert found["cpu_model_name"] == "QEMU Virtual CPU version 1.5.3"
    assert found["dmi_bios_vendor"] == "SeaBIOS"
    assert found["dmi_system_manufacturer"] == "Red Hat"
    assert found["dmi_system_product_name"] == "KVM"
    assert found["dmi_system_uuid"] == "6a2d8f14-91c3-4b7e-a5d2-0e9f3b1c7d48"
    assert found["virt_what_type"] == "kvm"
    assert found["virt_type"] == "kvm"
    assert found["ifconfig_ip_addresses"] == ["192.168.122.15"]
    assert found["ifconfig_mac_addresses"] == ["52:54:00:12:34:56"]
    assert found["redhat_packages_gpg_num_rh_packages"] == 2
    assert found["installed_packages_count"] == 3
    assert found["subman_consumed"] == []
    assert found["system_user_count"] == 1
    assert found["sshd_config"] is None
    assert found["ssh_authorized_keys"] == {}
    assert found["ssh_host_keys"] == []


# --- single parsers: missing, failed and garbled ----------------------------------------


@pytest.mark.parametrize(
    "given", [None, section("lab-01 6.1.0 x86_64 unknown", 1), section("lab-01"), section("")]
)
def test_uname_missing_failed_or_garbled_is_none(given: Section | None) -> None:
    assert set(facts.parse_uname(given).values()) == {None}


def test_uname_processor_with_words() -> None:
    parsed = facts.parse_uname(section("old 2.6.9 i686 AMD Athlon(tm) XP 2000+"))
    assert parsed["uname_processor"] == "AMD Athlon(tm) XP 2000+"


def test_os_release_values_are_unquoted_and_junk_skipped() -> None:
    values = facts.parse_os_release(
        'NAME=\'Fedora Linux\'\nVERSION_ID=39\nPRETTY_NAME="Fedora \\"39\\""\n'
        'BROKEN="unterminated\n# comment\nlowercase=x\n'
    )
    assert values == {"NAME": "Fedora Linux", "VERSION_ID": "39", "PRETTY_NAME": 'Fedora "39"'}


def test_etc_release_without_any_file_is_none() -> None:
    parsed = facts.parse_etc_release(
        os_release=section("", 1), redhat_release=section("CentOS Linux (Core)")
    )
    assert set(parsed.values()) == {None}


def test_etc_release_from_centos_redhat_release() -> None:
    parsed = facts.parse_etc_release(
        os_release=None, redhat_release=section("CentOS Linux release 7.9.2009 (Core)")
    )
    assert parsed == {
        "etc_release_name": "CentOS Linux",
        "etc_release_version": "7.9.2009",
        "etc_release_release": "CentOS Linux release 7.9.2009 (Core)",
    }


@pytest.mark.parametrize(
    "given",
    [None, section("", 1), section("not-a-machine-id"), section("0" * 32), section("ab" * 17)],
)
def test_machine_id_garbled_is_none(given: Section | None) -> None:
    assert facts.parse_machine_id(given) is None


def test_cpuinfo_of_an_arm_machine_has_no_model_and_no_sockets() -> None:
    parsed = facts.parse_cpuinfo(section("processor\t: 0\nprocessor\t: 1\nprocessor\t: 2\n"))
    assert parsed == {
        "cpu_count": 3,
        "cpu_socket_count": None,
        "cpu_core_count": None,
        "cpu_model_name": None,
    }


def test_cpuinfo_with_sockets_but_no_core_ids_counts_sockets_only() -> None:
    text = "processor : 0\nphysical id : 0\nprocessor : 1\nphysical id : 1\n"
    parsed = facts.parse_cpuinfo(section(text))
    assert (parsed["cpu_socket_count"], parsed["cpu_core_count"]) == (2, None)


@pytest.mark.parametrize("given", [None, section("", 2), section("no processors here")])
def test_cpuinfo_missing_or_garbled_is_none(given: Section | None) -> None:
    assert set(facts.parse_cpuinfo(given).values()) == {None}


@pytest.mark.parametrize(
    "given", [None, section("MemTotal: 1024 kB", 1), section("MemTotal: lots"), section("")]
)
def test_memory_missing_or_garbled_is_none(given: Section | None) -> None:
    assert facts.parse_memory_bytes(given) is None


def test_dmi_placeholders_and_null_uuids_are_none() -> None:
    values = facts.parse_dmi_files(
        section(
            "bios_vendor=To Be Filled By O.E.M.\nsys_vendor=Default string\n"
            "product_name=System Product Name\nproduct_uuid=00000000-0000-0000-0000-000000000000\n"
            "garbage line\n"
        )
    )
    assert set(facts.dmi_facts(values).values()) == {None}


def test_dmi_uuid_that_is_not_a_uuid_is_none() -> None:
    assert facts.dmi_facts({"product_uuid": "Not Settable"})["dmi_system_uuid"] is None


def test_dmi_files_of_an_unprivileged_run_lack_the_uuid() -> None:
    values = facts.parse_dmi_files(section("bios_vendor=SeaBIOS\nsys_vendor=QEMU\n", 0))
    assert facts.dmi_facts(values) == {
        "dmi_bios_vendor": "SeaBIOS",
        "dmi_system_uuid": None,
        "dmi_system_manufacturer": "QEMU",
        "dmi_system_product_name": None,
    }


def test_dmidecode_without_smbios_gives_nothing() -> None:
    text = "# dmidecode 3.3\n# No SMBIOS nor DMI entry point found, sorry.\n"
    assert facts.parse_dmidecode(section(text)) == {}
    assert facts.parse_dmidecode(section("", 127)) == {}


@pytest.mark.parametrize(
    ("dmi", "provider"),
    [
        ({"bios_version": "4.11.amazon", "sys_vendor": "Xen"}, "aws"),
        ({"bios_vendor": "Amazon EC2", "sys_vendor": "Amazon EC2"}, "aws"),
        (
            {"sys_vendor": "Microsoft Corporation", "chassis_asset_tag": facts._AZURE_ASSET_TAG},
            "azure",
        ),
        ({"product_name": "Google Compute Engine", "bios_vendor": "Google"}, "gcp"),
        ({"product_name": "Alibaba Cloud ECS", "sys_vendor": "Alibaba Cloud"}, "alibaba"),
        ({"sys_vendor": "VMware, Inc.", "product_name": "VMware7,1"}, None),
        ({}, None),
    ],
)
def test_cloud_provider(dmi: dict[str, str | None], provider: str | None) -> None:
    assert facts.cloud_provider(dmi) == provider


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (section(""), "bare metal"),
        (section("xen\nxen-domU\n"), "xen"),
        (section("", 127), None),
        (section("virt-what: this script must be run as root", 1), None),
        (None, None),
    ],
)
def test_virt_what(given: Section | None, expected: str | None) -> None:
    assert facts.parse_virt_what(given) == expected


@pytest.mark.parametrize(
    ("detect", "virt_what", "dmi", "expected"),
    [
        (section("none", 1), "kvm", {}, None),
        (section("oracle"), None, {}, "virtualbox"),
        (section("microsoft"), None, {}, "hyperv"),
        (section("", 127), "vmware", {}, "vmware"),
        (None, "bare metal", {"sys_vendor": "QEMU", "product_name": "Standard PC"}, "kvm"),
        (
            None,
            None,
            {"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine"},
            "hyperv",
        ),
        (None, None, {"sys_vendor": "Dell Inc.", "product_name": "PowerEdge R740"}, None),
        (section("Failed to connect to bus", 2), None, {}, None),
    ],
)
def test_virt_type(
    detect: Section | None, virt_what: str | None, dmi: dict[str, str | None], expected: str | None
) -> None:
    assert facts.virt_type(detect_virt=detect, virt_what=virt_what, dmi=dmi) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (section("No consumed subscription pools were found."), []),
        (section("This system is not yet registered. Try ...", 1), []),
        (section("", 127), None),
        (section("Unable to verify server's identity: timed out", 70), None),
        (section("", 124), None),
        (None, None),
    ],
)
def test_subman_consumed_edge_cases(
    given: Section | None, expected: list[dict[str, Any]] | None
) -> None:
    assert facts.parse_subman_consumed(given) == expected


def test_rpm_missing_or_failed_is_none() -> None:
    assert facts.parse_rpm(section("", 127)) == (None, None)
    assert facts.parse_rpm(section("error: rpmdb open failed", 1)) == (None, None)
    assert facts.package_counts(rpm=None, dpkg=section("", 127)) == {
        "redhat_packages_gpg_num_rh_packages": None,
        "installed_packages_count": None,
    }


def test_rpm_counts_only_red_hat_keys() -> None:
    text = (
        "a|(none)|RSA/SHA256, Key ID 199E2F91FD431D51|(none)|(none)\n"
        "b|(none)|RSA/SHA256, Key ID 8a3872bf3228467c|(none)|(none)\n"
        "c|DSA/SHA1, Key ID 5326810137017186|(none)|(none)|(none)\n"
    )
    assert facts.parse_rpm(section(text)) == (3, 2)


def test_dpkg_count() -> None:
    assert facts.parse_dpkg(section("2\n")) == 2
    # grep -c counts none with status 1.
    assert facts.parse_dpkg(section("0", 1)) == 0
    assert facts.parse_dpkg(section("", 127)) is None
    assert facts.parse_dpkg(section("grep: /var/lib/dpkg/status: Permission denied", 2)) is None
    assert facts.parse_dpkg(section("lots")) is None


@pytest.mark.parametrize(
    ("passwd", "login_defs", "expected"),
    [
        (section("a:x:999:1::/:/bin/sh\nb:x:1000:1::/:/bin/sh"), None, 1),
        (section("a:x:999:1::/:/bin/sh\nb:x:1000:1::/:/bin/sh"), section("UID_MIN 500"), 2),
        (section("nobody:x:65534:65534::/:/bin/sh"), section("", 1), 0),
        (section("garbage\n"), None, None),
        (section("", 2), None, None),
        (None, None, None),
    ],
)
def test_system_user_count(
    passwd: Section | None, login_defs: Section | None, expected: int | None
) -> None:
    assert facts.system_user_count(passwd=passwd, login_defs=login_defs) == expected


@pytest.mark.parametrize(
    "given",
    [
        section(
            "1: lo    inet 127.0.0.1/8 scope host lo\\ valid_lft forever\n"
            "2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\\ valid_lft\n"
            "2: eth0    inet6 fe80::1/64 scope link \\ valid_lft\n"
        ),
        section(
            "eth0: flags=4163<UP>  mtu 1500\n        inet 10.0.0.5  netmask 255.255.255.0\n"
            "        inet6 fe80::1%eth0  prefixlen 64  scopeid 0x20<link>\n"
            "lo: flags=73<UP,LOOPBACK>\n        inet 127.0.0.1  netmask 255.0.0.0\n"
        ),
    ],
)
def test_ip_addresses_from_ip_or_ifconfig(given: Section) -> None:
    assert facts.parse_ip_addresses(given) == ["10.0.0.5"]


def test_ip_addresses_missing_or_garbled() -> None:
    assert facts.parse_ip_addresses(section("", 127)) is None
    assert facts.parse_ip_addresses(section("inet not.an.address/24")) == []


def test_mac_addresses_missing() -> None:
    assert facts.parse_mac_addresses(section("", 2)) is None
    assert facts.parse_mac_addresses(None) is None


# --- SSH keys and settings ----------------------------------------------------------------


def test_public_key_line_without_options() -> None:
    assert ssh_facts.parse_public_key_line(ALICE_PUB) == {
        "type": "ssh-ed25519",
        "fingerprint": ALICE_KEY,
        "comment": "alice@laptop",
        "options": [],
    }


def test_public_key_line_with_options_containing_spaces_and_commas() -> None:
    line = f'restrict,command="echo a, b c",environment="X=1" {ALICE_PUB}'
    parsed = ssh_facts.parse_public_key_line(line)
    assert parsed is not None
    assert parsed["options"] == ["restrict", 'command="echo a, b c"', 'environment="X=1"']
    assert parsed["fingerprint"] == ALICE_KEY


@pytest.mark.parametrize(
    "line",
    [
        "",
        "# ssh-ed25519 AAAA commented out",
        "ssh-ed25519",
        "ssh-ed25519 !!!notbase64!!!",
        # A valid blob whose embedded type is not the declared one.
        "ssh-rsa " + ALICE_PUB.split()[1],
        'from="10.0.0.1" not-a-key-type AAAA',
        'command="unterminated ssh-ed25519 AAAA',
    ],
)
def test_malformed_key_lines_are_skipped(line: str) -> None:
    assert ssh_facts.parse_public_key_line(line) is None


def test_authorized_keys_missing_or_failed_is_none() -> None:
    assert ssh_facts.parse_authorized_keys(None, marker=M) is None
    assert ssh_facts.parse_authorized_keys(section("", 1), marker=M) is None


def test_authorized_keys_skip_lines_before_any_file_and_repeated_files() -> None:
    text = "\n".join(
        [
            ALICE_PUB,
            f"{M} file alice /home/alice/.ssh/authorized_keys",
            ALICE_PUB,
            f"{M} file alice /home/alice/.ssh/authorized_keys",
            ALICE_PUB,
        ]
    )
    keys = ssh_facts.parse_authorized_keys(section(text), marker=M)
    assert keys is not None
    assert [key["fingerprint"] for key in keys["alice"]] == [ALICE_KEY]


def test_sshd_config_missing_failed_or_empty_is_none() -> None:
    assert ssh_facts.parse_sshd_config(None) is None
    assert ssh_facts.parse_sshd_config(section("", 1)) is None
    assert ssh_facts.parse_sshd_config(section("Bad configuration option\n")) is None


def test_has_sudo_needs_the_privileged_section_to_answer() -> None:
    assert facts.has_privilege(section("0")) is True
    assert facts.has_privilege(section("", 1)) is False
    assert facts.has_privilege(section("sudo: a password is required")) is False
    assert facts.has_privilege(None) is False


# --- the script's become methods ----------------------------------------------------------


def test_become_commands_feed_a_password_on_stdin_and_never_prompt() -> None:
    sudo = script.become_command(method="sudo", user="root", password=None)
    assert sudo == 'sudo -n -u root -- /bin/sh -c "$P" </dev/null'
    sudo_password = script.become_command(method="sudo", user="root", password="it's")
    assert sudo_password == (
        "printf '%s\\n' 'it'\"'\"'s' | sudo -S -p '' -u root -- /bin/sh -c \"$P\""
    )
    su = script.become_command(method="su", user="admin", password="pw")
    assert su == "printf '%s\\n' pw | su -s /bin/sh -c \"$P\" admin"
    assert script.become_command(method="doas", user="root", password=None) == (
        'doas -n -u root /bin/sh -c "$P" </dev/null'
    )
    assert script.become_command(method="pbrun", user="root", password=None) is None


def test_every_run_has_its_own_marker() -> None:
    assert script.new_marker() != script.new_marker()
    built = script.build(marker=M, become_method="sudo", become_user="root", become_password=None)
    assert built.startswith("{\n") and built.endswith("}\n")
    assert built.count(f"M={M}") == 2


# --- what the collectors take and give ------------------------------------------------------


def test_credential_from_the_wire_and_secrets_out_of_its_repr() -> None:
    credential = Credential.model_validate(
        {
            "id": "4",
            "name": "ops",
            "username": "admin",
            "password": None,
            "sshKey": "-----BEGIN OPENSSH PRIVATE KEY-----",
            "sshPassphrase": "pass phrase",
            "becomeMethod": "su",
            "becomeUser": None,
            "becomePassword": "root secret",
        }
    )
    assert credential == Credential(
        id=4,
        name="ops",
        username="admin",
        ssh_key="-----BEGIN OPENSSH PRIVATE KEY-----",
        ssh_passphrase="pass phrase",
        become_method="su",
        become_user="root",
        become_password="root secret",
    )
    assert "secret" not in repr(credential) and "phrase" not in repr(credential)


def test_system_result_to_the_wire() -> None:
    result = SystemResult(
        system="10.0.0.5", port=22, status="success", credential_id=4, facts={"cpu_count": 2}
    )
    assert result.to_wire() == {
        "system": "10.0.0.5",
        "port": 22,
        "status": "success",
        "message": "",
        "credentialId": 4,
        "facts": {"cpu_count": 2},
    }
