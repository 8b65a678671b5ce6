"""One lab host's sshd: its files, its configuration and the command that starts it."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

from quipu.lab.accounts import PASSWORD_USER, SUDO_USER, write_key_pair

SSHD = Path("/usr/sbin/sshd")
LOGIN_RECORDS = ("wtmp", "btmp", "lastlog")
"""Files in /var/log that sshd writes at each login; each host gets empty ones of its own."""
STASH = "/run/quipu-lab"
"""Where each namespace keeps the lab root reachable while /run and /home are covered."""


@dataclasses.dataclass(frozen=True, slots=True)
class HostFiles:
    """The files of one lab host, all under ``directory``."""

    directory: Path

    @property
    def config(self) -> Path:
        return self.directory / "sshd_config"

    @property
    def host_key(self) -> Path:
        return self.directory / "ssh_host_ed25519_key"

    @property
    def pid_file(self) -> Path:
        return self.directory / "sshd.pid"

    @property
    def log(self) -> Path:
        return self.directory / "sshd.log"

    @property
    def launch_log(self) -> Path:
        return self.directory / "launch.log"


def sshd_config(*, files: HostFiles, address: str, port: int) -> str:
    """sshd settings for a lab host: its address only, no DNS, room for many concurrent
    logins, key logins for the sudo user and password logins for the other."""
    return (
        f"ListenAddress {address}:{port}\n"
        f"HostKey {files.host_key}\n"
        f"PidFile {files.pid_file}\n"
        # PAM would run session modules that write to the machine's /run and logs.
        "UsePAM no\n"
        "UseDNS no\n"
        "StrictModes no\n"
        "PermitRootLogin no\n"
        f"AllowUsers {SUDO_USER} {PASSWORD_USER}\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\n"
        "AuthorizedKeysFile .ssh/authorized_keys\n"
        "MaxStartups 200:30:400\n"
        "MaxSessions 64\n"
        "LoginGraceTime 30\n"
        "PrintMotd no\n"
        "PrintLastLog no\n"
        "X11Forwarding no\n"
        "PermitUserEnvironment no\n"
        "AcceptEnv LANG LC_*\n"
        "Subsystem sftp internal-sftp\n"
        "LogLevel INFO\n"
        f"Match User {SUDO_USER}\n"
        "    AuthenticationMethods publickey\n"
        f"Match User {PASSWORD_USER}\n"
        "    AuthenticationMethods password\n"
    )


def write_host(
    *,
    files: HostFiles,
    address: str,
    port: int,
    hostname: str,
    machine_id: str,
    namespaced: bool,
) -> None:
    """Write a host's key, configuration and (when namespaced) its identity files."""
    files.directory.mkdir(parents=True)
    write_key_pair(files.host_key)
    files.config.write_text(sshd_config(files=files, address=address, port=port))
    if namespaced:
        (files.directory / "hostname").write_text(hostname + "\n")
        (files.directory / "machine-id").write_text(machine_id + "\n")
        hosts = Path("/etc/hosts").read_text() if Path("/etc/hosts").exists() else ""
        (files.directory / "hosts").write_text(f"{hosts.rstrip()}\n{address}\t{hostname}\n")
        for name in LOGIN_RECORDS:
            (files.directory / name).touch(mode=0o664)


def _bind(source: Path | str, target: Path | str) -> str:
    return f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(target))}"


def namespace_setup(
    *, files: HostFiles, hostname: str, root: Path, etc_copies: Path, users: list[str]
) -> list[str]:
    """Shell lines run inside a host's fresh UTS and mount namespaces, before sshd starts.

    Mounts made here are private to the namespace: the machine never sees the lab users,
    the host's identity, its login records or its /run (where sshd and sudo keep state).
    """
    lines = [f"echo {shlex.quote(hostname)} > /proc/sys/kernel/hostname"]
    for name in ("passwd", "shadow", "group", "sudoers"):
        lines.append(_bind(etc_copies / name, f"/etc/{name}"))
    lines.append(_bind(files.directory / "hosts", "/etc/hosts"))
    for name in ("hostname", "machine-id"):
        if Path("/etc", name).exists():
            lines.append(_bind(files.directory / name, f"/etc/{name}"))
    for name in LOGIN_RECORDS:
        if Path("/var/log", name).exists():
            lines.append(_bind(files.directory / name, f"/var/log/{name}"))
    lines += [
        "mount -t tmpfs -o mode=0755,size=16m lab-run /run",
        f"mkdir -m 0755 /run/sshd {STASH}",
        _bind(root, STASH),
        "mount -t tmpfs -o mode=0755,size=16m lab-home /home",
    ]
    if root.is_relative_to("/home"):
        lines += [f"mkdir -p {shlex.quote(str(root))}", _bind(STASH, root)]
    for user in users:
        lines += [f"mkdir -m 0755 /home/{user}", _bind(f"{STASH}/home/{user}", f"/home/{user}")]
    return lines


def launch_command(*, files: HostFiles, setup: list[str] | None) -> list[str]:
    """The command that starts the host's sshd, inside new namespaces when ``setup`` is
    given.

    sshd detaches before it binds, so its own exit says nothing; this command instead
    exits 0 once sshd has written its pid file (it does so once it listens), or with
    sshd's status if sshd dies first. sshd stays in the command's process group.
    """
    sshd = shlex.join([str(SSHD), "-D", "-f", str(files.config), "-E", str(files.log)])
    pid_file = shlex.quote(str(files.pid_file))
    script = "\n".join(
        [
            "set -e",
            *(setup or []),
            f"{sshd} &",
            f"while [ ! -s {pid_file} ]; do",
            '    kill -0 "$!" 2>/dev/null || { wait "$!" && exit 0 || exit "$?"; }',
            "    sleep 0.01",
            "done",
        ]
    )
    if setup is None:
        return ["/bin/sh", "-c", script]
    return ["unshare", "--uts", "--mount", "--propagation", "private", "/bin/sh", "-c", script]
