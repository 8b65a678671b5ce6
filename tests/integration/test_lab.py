"""The lab on real sshd: identities, logins, sudo, hung hosts, refusals and a clean stop."""

from __future__ import annotations

import asyncio
import os
import pwd
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from quipu.domain.errors import Conflict, InvalidInput
from quipu.lab import Lab, LabHost, accounts, control, lab_down, lab_up, load_lab, processes, state
from quipu.lab.errors import LabError

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab starts sshd and needs root"),
]

NET = "127.0.211"
PORT = 22211


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab") / "lab"
    try:
        yield lab_up(root=root, hosts=3, net=NET, port=PORT, slow=1)
    finally:
        lab_down(root=root)


def _normal(lab: Lab) -> list[LabHost]:
    return [host for host in lab.hosts if not host.slow]


async def _run(
    host: LabHost,
    command: str,
    *,
    username: str,
    key: Path | None = None,
    password: str | None = None,
) -> tuple[asyncssh.SSHCompletedProcess, str]:
    """Run ``command`` on ``host``; return its result and the host key's fingerprint."""
    async with asyncssh.connect(
        host.address,
        host.port,
        username=username,
        client_keys=[asyncssh.read_private_key(key)] if key else [],
        password=password,
        known_hosts=None,
    ) as connection:
        result = await connection.run(command, check=False)
        fingerprint = connection.get_server_host_key().get_fingerprint()
        return result, fingerprint


def test_hosts_are_listed_normal_first_on_consecutive_addresses(lab: Lab) -> None:
    assert [host.address for host in lab.hosts] == [f"{NET}.{i}" for i in range(1, 5)]
    assert [host.slow for host in lab.hosts] == [False, False, False, True]
    assert {host.port for host in lab.hosts} == {PORT}
    assert lab.sudo_key_path.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")


def test_each_host_answers_with_an_openssh_banner(lab: Lab) -> None:
    for host in _normal(lab):
        with socket.create_connection((host.address, host.port), timeout=5) as sock:
            banner = sock.makefile("rb").readline()
        assert banner.startswith(b"SSH-2.0-OpenSSH_"), banner


def test_sudo_user_sees_the_identity_of_its_host_and_has_sudo(lab: Lab) -> None:
    async def visit(host: LabHost) -> tuple[asyncssh.SSHCompletedProcess, str]:
        return await _run(
            host,
            "hostname; cat /etc/machine-id; sudo -n true && echo sudo-ok",
            username=lab.sudo_user,
            key=lab.sudo_key_path,
        )

    async def visit_all() -> list[tuple[asyncssh.SSHCompletedProcess, str]]:
        return await asyncio.gather(*(visit(host) for host in _normal(lab)))

    results = asyncio.run(visit_all())
    for host, (result, _) in zip(_normal(lab), results, strict=True):
        assert result.exit_status == 0, result.stderr
        assert result.stdout.split() == [host.hostname, host.machine_id, "sudo-ok"]
    if lab.namespaces:
        assert len({host.hostname for host in _normal(lab)}) == 3
        assert len({host.machine_id for host in _normal(lab)}) == 3
        assert len({fingerprint for _, fingerprint in results}) == 3


def test_password_user_logs_in_with_the_password_and_has_no_sudo(lab: Lab) -> None:
    host = _normal(lab)[1]
    result, _ = asyncio.run(
        _run(host, "id -un; sudo -n true", username=lab.password_user, password=lab.password)
    )
    assert result.stdout.split()[0] == lab.password_user
    assert result.exit_status != 0
    assert "password is required" in str(result.stderr)


def test_password_user_is_refused_a_wrong_password(lab: Lab) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(
            _run(_normal(lab)[0], "true", username=lab.password_user, password="wrong-password")
        )


def test_slow_host_accepts_tcp_and_sends_nothing(lab: Lab) -> None:
    slow = lab.hosts[-1]
    with socket.create_connection((slow.address, slow.port), timeout=5) as sock:
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            sock.recv(1)


def test_load_lab_describes_the_running_lab(lab: Lab) -> None:
    assert load_lab(root=lab.root) == lab


def test_a_second_lab_at_the_same_root_is_refused(lab: Lab) -> None:
    with pytest.raises(Conflict, match="quipu lab down"):
        lab_up(root=lab.root, hosts=1, net="127.0.214", port=PORT)
    assert load_lab(root=lab.root) == lab


@pytest.mark.parametrize("net", ["10.0.0", "127.0", "127.0.0.1", "127.0.256", "localhost", ""])
def test_bad_net_is_refused(tmp_path: Path, net: str) -> None:
    with pytest.raises(InvalidInput, match="net") as raised:
        lab_up(root=tmp_path / "lab", net=net)
    assert raised.value.field == "net"
    assert not (tmp_path / "lab").exists()


@pytest.mark.parametrize("hosts", [0, 251])
def test_host_count_out_of_range_is_refused(tmp_path: Path, hosts: int) -> None:
    with pytest.raises(InvalidInput, match="hosts") as raised:
        lab_up(root=tmp_path / "lab", hosts=hosts)
    assert raised.value.field == "hosts"


def test_too_many_slow_hosts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="slow") as raised:
        lab_up(root=tmp_path / "lab", hosts=250, slow=5)
    assert raised.value.field == "slow"


def _not_running(pid: int) -> bool:
    # Stopped processes the lab did not parent are reaped by init a moment later.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            return True
        if fields[0] == "Z":
            return True
        time.sleep(0.05)
    return False


def test_lab_down_stops_every_process_and_removes_the_root(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    lab = lab_up(root=root, hosts=2, net="127.0.212", port=PORT, slow=1)
    try:
        recorded = state.load(root)
        assert recorded is not None
        assert len(recorded.processes) == 3
        assert all(processes.is_running(process) for process in recorded.processes)

        async def stop_with_a_session_open() -> int:
            async with asyncssh.connect(
                lab.hosts[0].address,
                PORT,
                username=lab.sudo_user,
                client_keys=[asyncssh.read_private_key(lab.sudo_key_path)],
                known_hosts=None,
            ) as connection:
                session = await connection.create_process("echo $$; exec sleep 600")
                pid = int(await session.stdout.readline())
                await asyncio.to_thread(lab_down, root=root)
                return pid

        session_pid = asyncio.run(stop_with_a_session_open())
    finally:
        lab_down(root=root)
    for process in recorded.processes:
        assert _not_running(process.pid)
    assert _not_running(session_pid)
    assert not root.exists()
    assert load_lab(root=root) is None
    lab_down(root=root)


def test_without_namespaces_the_lab_users_are_real_until_lab_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "_namespaces_permitted", lambda: False)
    root = tmp_path / "lab"
    lab = lab_up(root=root, hosts=2, net="127.0.213", port=PORT)
    try:
        assert not lab.namespaces
        assert {host.hostname for host in lab.hosts} == {socket.gethostname()}
        assert pwd.getpwnam(lab.sudo_user).pw_dir == f"/home/{lab.sudo_user}"
        result, _ = asyncio.run(
            _run(
                lab.hosts[1],
                "hostname; sudo -n true && echo sudo-ok",
                username=lab.sudo_user,
                key=lab.sudo_key_path,
            )
        )
        assert result.stdout.split() == [socket.gethostname(), "sudo-ok"]
        assert result.stderr == ""
    finally:
        lab_down(root=root)
    for user in (lab.sudo_user, lab.password_user):
        with pytest.raises(KeyError):
            pwd.getpwnam(user)
        assert not Path("/home", user).exists()
    assert not list(Path("/etc/sudoers.d").glob("quipu-lab-*"))
    assert not root.exists()


def test_a_lab_in_namespaces_and_one_on_the_machine_never_share_a_user_id(tmp_path: Path) -> None:
    """Each picks ids from the machine's files, so each must have a range of its own."""
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("passwd", "group", "shadow"):
        (etc / name).write_text("root:x:0:0:root:/root:/bin/bash\n")
    namespaced = accounts.plan(password="x", home_base=tmp_path, etc=etc)
    real = accounts.plan(password="x", home_base=tmp_path, real=True, etc=etc)
    assert not {a.uid for a in namespaced} & {a.uid for a in real}


def test_a_lab_in_namespaces_replaces_a_same_named_user_of_the_machine(tmp_path: Path) -> None:
    """A lab up without namespaces has added quipu-admin to the machine: a lab in namespaces
    still starts, and its hosts know only their own quipu-admin."""
    etc = tmp_path / "etc"
    etc.mkdir()
    real_line = f"{accounts.SUDO_USER}:x:61100:61100:Quipu lab:/home/{accounts.SUDO_USER}:/bin/bash"
    (etc / "passwd").write_text(f"root:x:0:0:root:/root:/bin/bash\n{real_line}\n")
    (etc / "group").write_text(f"root:x:0:\n{accounts.SUDO_USER}:x:61100:\n")
    (etc / "shadow").write_text(f"root:*:::::::\n{accounts.SUDO_USER}:*:::::::\n")
    with pytest.raises(LabError, match="already exists"):
        accounts.plan(password="x", home_base=tmp_path, real=True, etc=etc)
    users = accounts.plan(password="x", home_base=tmp_path, etc=etc)
    accounts.write_account_files(accounts=users, target=tmp_path / "copies", etc=etc)
    passwd = (tmp_path / "copies" / "passwd").read_text().splitlines()
    admins = [line for line in passwd if line.startswith(f"{accounts.SUDO_USER}:")]
    assert len(admins) == 1 and real_line not in admins
    assert passwd[0].startswith("root:")
