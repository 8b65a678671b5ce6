"""SSH login and inspection against real sshd lab hosts: credentials, refusals, unreachable
systems, facts the machine itself reports, become methods, stop and timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from quipu.collectors.network.inspect import inspect, inspect_many
from quipu.collectors.network.ssh import login, login_many
from quipu.lab import Lab, LabHost, lab_down, lab_up
from quipu.wire import Credential, SystemResult

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab starts sshd and needs root"),
]

NET = "127.0.212"
PORT = 22212
CLOSED_PORT = 1
HANG = 3599
"""Seconds a hung login shell sleeps; an unusual number, so its process can be found."""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("ssh-collectors") / "lab"
    try:
        yield lab_up(root=root, hosts=3, net=NET, port=PORT, slow=1)
    finally:
        lab_down(root=root)


def _normal(lab: Lab) -> list[LabHost]:
    return [host for host in lab.hosts if not host.slow]


def _slow(lab: Lab) -> LabHost:
    return next(host for host in lab.hosts if host.slow)


def _admin(lab: Lab, *, id: int = 1, **changes: str | None) -> Credential:
    base = Credential(
        id=id,
        name=f"admin-{id}",
        username=lab.sudo_user,
        ssh_key=lab.sudo_key_path.read_text(),
    )
    return base.model_copy(update=changes)


def _user(lab: Lab, *, id: int = 2, **changes: str | None) -> Credential:
    base = Credential(id=id, name=f"user-{id}", username=lab.password_user, password=lab.password)
    return base.model_copy(update=changes)


def _other_key() -> str:
    key = asyncssh.generate_private_key("ssh-ed25519")
    return bytes(key.export_private_key()).decode()


def _meminfo_total() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def _presented_host_key(host: LabHost) -> str:
    """The fingerprint of the host key the host presents when one connects."""

    async def fetch() -> str:
        connection = await asyncssh.get_server_host_key(host.address, host.port)
        return str(connection.get_fingerprint())

    return asyncio.run(fetch())


# --- login --------------------------------------------------------------------------------


def test_login_uses_the_first_credential_that_works(lab: Lab) -> None:
    host = _normal(lab)[0]
    wrong = _admin(lab, id=7, ssh_key=_other_key())
    result = asyncio.run(
        login(address=host.address, port=host.port, credentials=[wrong, _admin(lab, id=8)])
    )
    assert result.status == "success"
    assert result.credential_id == 8


def test_login_with_a_password(lab: Lab) -> None:
    host = _normal(lab)[1]
    result = asyncio.run(login(address=host.address, port=host.port, credentials=[_user(lab)]))
    assert (result.status, result.credential_id) == ("success", 2)


def test_login_with_a_passphrase_protected_key(lab: Lab) -> None:
    host = _normal(lab)[0]
    key = asyncssh.read_private_key(lab.sudo_key_path)
    # PKCS#8: an encrypted key in OpenSSH's own format needs bcrypt, which asyncssh makes
    # optional.
    protected = bytes(key.export_private_key("pkcs8-pem", passphrase="open sesame")).decode()
    good = _admin(lab, id=3, ssh_key=protected, ssh_passphrase="open sesame")
    bad = _admin(lab, id=4, ssh_key=protected, ssh_passphrase="wrong")
    result = asyncio.run(login(address=host.address, port=host.port, credentials=[bad, good]))
    assert (result.status, result.credential_id) == ("success", 3)
    refused = asyncio.run(login(address=host.address, port=host.port, credentials=[bad]))
    assert refused.status == "failed"
    assert "credential 'admin-4' cannot be read" in refused.message


def test_login_refused_for_every_credential_keeps_each_reason(lab: Lab) -> None:
    host = _normal(lab)[0]
    credentials = [
        _user(lab, id=5, password="not the password"),
        _admin(lab, id=6, ssh_key=_other_key()),
    ]
    result = asyncio.run(login(address=host.address, port=host.port, credentials=credentials))
    assert result.status == "failed"
    assert result.credential_id is None
    assert result.message == (
        f"Permission denied for {lab.password_user} (password); "
        f"Permission denied for {lab.sudo_user} (publickey)"
    )


def test_login_to_a_closed_port_is_unreachable(lab: Lab) -> None:
    host = _normal(lab)[0]
    result = asyncio.run(
        login(address=host.address, port=CLOSED_PORT, credentials=[_admin(lab)], connect_timeout=2)
    )
    assert result.status == "unreachable"
    assert result.message == f"port {CLOSED_PORT} refused the connection"


def test_login_to_a_host_that_never_answers_ssh_is_unreachable(lab: Lab) -> None:
    host = _slow(lab)
    result = asyncio.run(
        login(address=host.address, port=host.port, credentials=[_admin(lab)], connect_timeout=1)
    )
    assert result.status == "unreachable"
    assert result.message == f"no SSH answer on port {host.port} within 1 s"


def test_login_many_reports_every_system_once(lab: Lab) -> None:
    systems = [(host.address, host.port) for host in lab.hosts]
    systems.append((_normal(lab)[0].address, CLOSED_PORT))
    results: list[SystemResult] = []

    async def collect(result: SystemResult) -> None:
        results.append(result)

    asyncio.run(
        login_many(
            systems=systems,
            credentials=[_user(lab, id=9, password="wrong"), _admin(lab)],
            concurrency=2,
            connect_timeout=1,
            on_result=collect,
        )
    )
    by_system = {(r.system, r.port): (r.status, r.credential_id) for r in results}
    assert len(results) == len(systems) == len(by_system)
    for host in _normal(lab):
        assert by_system[(host.address, host.port)] == ("success", 1)
    assert by_system[(_slow(lab).address, PORT)] == ("unreachable", None)
    assert by_system[(_normal(lab)[0].address, CLOSED_PORT)] == ("unreachable", None)


def test_login_many_starts_nothing_once_stopped(lab: Lab) -> None:
    results: list[SystemResult] = []

    async def collect(result: SystemResult) -> None:
        results.append(result)

    async def run() -> None:
        stop = asyncio.Event()
        stop.set()
        await login_many(
            systems=[(host.address, host.port) for host in _normal(lab)],
            credentials=[_admin(lab)],
            concurrency=4,
            connect_timeout=2,
            on_result=collect,
            stop=stop,
        )

    asyncio.run(run())
    assert results == []


# --- inspection -----------------------------------------------------------------------------


def test_inspection_with_sudo_reports_what_the_machine_reports(lab: Lab) -> None:
    results: list[SystemResult] = []

    async def collect(result: SystemResult) -> None:
        results.append(result)

    asyncio.run(
        inspect_many(
            systems=[(host.address, host.port, _admin(lab)) for host in _normal(lab)],
            concurrency=3,
            timeout=60,
            on_result=collect,
        )
    )
    assert sorted(r.system for r in results) == sorted(h.address for h in _normal(lab))
    os_release = platform.freedesktop_os_release()
    admin_key = asyncssh.read_private_key(lab.sudo_key_path).get_fingerprint()
    for result in results:
        host = next(h for h in lab.hosts if h.address == result.system)
        facts = result.facts
        assert (result.status, result.message, result.credential_id) == ("success", "", 1)
        assert facts["has_sudo"] is True
        assert facts["cpu_count"] == os.cpu_count()
        assert facts["system_memory_bytes"] == _meminfo_total()
        assert facts["etc_release_name"] == os_release["NAME"]
        assert facts["etc_release_version"] == os_release.get("VERSION_ID")
        assert facts["etc_release_release"] == os_release.get("PRETTY_NAME")
        assert facts["uname_kernel"] == platform.release()
        if lab.namespaces:
            assert facts["uname_hostname"] == host.hostname
            assert facts["etc_machine_id"] == host.machine_id
        else:
            assert facts["uname_hostname"] == socket.gethostname()
        config = facts["sshd_config"]
        assert config is not None
        assert config["listenaddress"] == [f"{host.address}:{host.port}"]
        presented = _presented_host_key(host)
        assert presented in {key["fingerprint"] for key in facts["ssh_host_keys"]}
        admin_keys = facts["ssh_authorized_keys"][lab.sudo_user]
        assert [key["fingerprint"] for key in admin_keys] == [admin_key]
    if lab.namespaces:
        assert len({r.facts["etc_machine_id"] for r in results}) == len(results)


def test_inspection_without_privilege(lab: Lab) -> None:
    host = _normal(lab)[1]
    result = asyncio.run(inspect(address=host.address, port=host.port, credential=_user(lab)))
    assert (result.status, result.credential_id) == ("success", 2)
    assert result.facts["has_sudo"] is False
    assert result.facts["sshd_config"] is None
    assert result.facts["virt_what_type"] is None
    assert result.facts["cpu_count"] == os.cpu_count()
    if lab.namespaces:
        assert result.facts["uname_hostname"] == host.hostname


@pytest.mark.parametrize(
    ("who", "become", "has_sudo"),
    [
        # The NOPASSWD rule accepts whatever password sudo -S is fed.
        pytest.param("admin", {"become_password": "anything"}, True, id="sudo-S"),
        pytest.param("user", {}, False, id="sudo-n-refused"),
        pytest.param("user", {"become_password": "PASSWORD"}, False, id="sudo-S-refused"),
        # su to the user itself needs its password: proof that the password reaches su.
        pytest.param(
            "user",
            {"become_method": "su", "become_user": "USER", "become_password": "PASSWORD"},
            True,
            id="su",
        ),
        pytest.param(
            "user",
            {"become_method": "su", "become_user": "USER", "become_password": "wrong"},
            False,
            id="su-refused",
        ),
        pytest.param("admin", {"become_method": "doas"}, False, id="doas-absent"),
    ],
)
def test_become_methods(lab: Lab, who: str, become: dict[str, str], has_sudo: bool) -> None:
    values = {
        key: {"PASSWORD": lab.password, "USER": lab.password_user}.get(value, value)
        for key, value in become.items()
    }
    credential = _admin(lab, **values) if who == "admin" else _user(lab, **values)
    host = _normal(lab)[2]
    result = asyncio.run(inspect(address=host.address, port=host.port, credential=credential))
    assert result.status == "success"
    assert result.facts["has_sudo"] is has_sudo
    assert result.facts["cpu_count"] == os.cpu_count()


def test_inspection_of_a_host_that_never_answers_times_out(lab: Lab) -> None:
    host = _slow(lab)
    result = asyncio.run(
        inspect(address=host.address, port=host.port, credential=_admin(lab), timeout=1)
    )
    assert (result.status, result.message) == ("failed", "timed out after 1 s")


def test_inspection_with_a_refused_credential_fails_with_the_reason(lab: Lab) -> None:
    host = _normal(lab)[0]
    credential = _user(lab, password="wrong")
    result = asyncio.run(inspect(address=host.address, port=host.port, credential=credential))
    assert result.status == "failed"
    assert result.message.startswith(f"Permission denied for {lab.password_user} (password)")


def test_inspection_of_a_closed_port_is_unreachable(lab: Lab) -> None:
    host = _normal(lab)[0]
    result = asyncio.run(inspect(address=host.address, port=CLOSED_PORT, credential=_admin(lab)))
    assert result.status == "unreachable"


@pytest.fixture
def hung_login_shell(lab: Lab) -> Iterator[LabHost]:
    """The sudo user's login shell hangs before it runs any command (bash reads ~/.bashrc
    for commands sent over SSH), on every host; written and removed over SFTP, which runs
    no shell."""

    async def write(content: bytes | None) -> None:
        for host in _normal(lab):
            async with asyncssh.connect(
                host.address,
                host.port,
                username=lab.sudo_user,
                client_keys=[asyncssh.read_private_key(lab.sudo_key_path)],
                known_hosts=None,
                config=None,
            ) as connection:
                async with connection.start_sftp_client() as sftp:
                    if content is None:
                        # Lab hosts may share one home directory.
                        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                            await sftp.remove(".bashrc")
                    else:
                        async with sftp.open(".bashrc", "wb") as file:
                            await file.write(content)

    asyncio.run(write(f"sleep {HANG}\n".encode()))
    try:
        yield _normal(lab)[0]
    finally:
        asyncio.run(write(None))
        _end_hung_shells()


def _end_hung_shells() -> None:
    """The sleeps this test's sessions left behind: sshd does not end the commands of a
    session without a terminal when its client goes away."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if command == f"sleep\0{HANG}\0".encode():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGTERM)


def _established(host: LabHost) -> int:
    """Established TCP connections to ``host`` in this network namespace."""
    octets = [int(part) for part in host.address.split(".")]
    address = "".join(f"{octet:02X}" for octet in reversed(octets))
    remote = f"{address}:{host.port:04X}"
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] == remote and fields[3] == "01":
            count += 1
    return count


def test_a_hung_session_times_out_with_the_reason(lab: Lab, hung_login_shell: LabHost) -> None:
    host = hung_login_shell
    result = asyncio.run(
        inspect(address=host.address, port=host.port, credential=_admin(lab), timeout=2)
    )
    assert (result.status, result.message) == ("failed", "timed out after 2 s")


def test_stop_closes_sessions_in_flight_and_reports_none(
    lab: Lab, hung_login_shell: LabHost
) -> None:
    results: list[SystemResult] = []

    async def collect(result: SystemResult) -> None:
        results.append(result)

    async def run() -> tuple[float, int, int]:
        stop = asyncio.Event()
        task = asyncio.create_task(
            inspect_many(
                systems=[(h.address, h.port, _admin(lab)) for h in _normal(lab)],
                concurrency=3,
                timeout=600,
                on_result=collect,
                stop=stop,
            )
        )
        # Wait until every session is open and its shell hangs.
        while sum(_established(h) for h in _normal(lab)) < len(_normal(lab)):
            assert not task.done()
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        open_before = sum(_established(h) for h in _normal(lab))
        stop.set()
        stopped_at = time.monotonic()
        await asyncio.wait_for(task, timeout=5)
        return (
            time.monotonic() - stopped_at,
            open_before,
            sum(_established(h) for h in _normal(lab)),
        )

    elapsed, open_before, open_after = asyncio.run(run())
    assert open_before == len(_normal(lab))
    assert elapsed <= 5
    assert open_after == 0
    assert results == []
