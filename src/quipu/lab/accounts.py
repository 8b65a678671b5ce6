"""Lab users: their keys, password, home directories and the account files that name them."""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import logging
import os
import secrets
import string
import subprocess
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from quipu.lab.errors import LabError

logger = logging.getLogger(__name__)

SUDO_USER = "quipu-admin"
PASSWORD_USER = "quipu-user"
SHELL = "/bin/bash"
_FIRST_ID = 60100
_FIRST_REAL_ID = 61100
"""Users added to the machine itself take ids from a range of their own: a lab in
namespaces picks its ids from the machine's files too, and the two must never share a uid
(userdel and pkill look at every process of a uid)."""
_SALT_ALPHABET = string.ascii_letters + string.digits + "./"


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    name: str
    uid: int
    home: Path
    """The home directory as the lab hosts see it."""
    password_hash: str
    """As in /etc/shadow: ``*`` allows key logins only (``!`` would lock the account)."""


def _hash_password(password: str) -> str:
    """SHA-512 crypt, made by the same libcrypt that sshd checks passwords with."""
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    libcrypt = ctypes.CDLL(name)
    libcrypt.crypt.restype = ctypes.c_char_p
    libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = "".join(secrets.choice(_SALT_ALPHABET) for _ in range(16))
    hashed: bytes | None = libcrypt.crypt(password.encode(), f"$6${salt}$".encode())
    if not hashed or not hashed.startswith(b"$6$"):
        raise LabError("libcrypt could not hash the lab password.")
    return hashed.decode()


def _used_ids(path: Path) -> set[int]:
    used = set()
    for line in path.read_text().splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2].isdigit():
            used.add(int(fields[2]))
    return used


def _existing_names(path: Path) -> set[str]:
    return {line.split(":", 1)[0] for line in path.read_text().splitlines() if line}


def plan(
    *, password: str, home_base: Path, real: bool = False, etc: Path = Path("/etc")
) -> list[Account]:
    """The sudo user and the password user, with ids free on this machine; ``real``: they
    are to be added to the machine itself rather than to the hosts' namespaces."""
    taken = _existing_names(etc / "passwd") | _existing_names(etc / "group")
    clash = sorted(taken & {SUDO_USER, PASSWORD_USER})
    # In namespaces the hosts' copies of the account files replace a same-named user.
    if clash and real:
        raise LabError(
            f"User or group {', '.join(clash)} already exists on this machine: another lab "
            "is up without namespaces, or it must be removed before the lab can start."
        )
    used = _used_ids(etc / "passwd") | _used_ids(etc / "group")
    first = _FIRST_REAL_ID if real else _FIRST_ID
    free = (uid for uid in range(first, 2**31) if uid not in used)
    return [
        Account(name=SUDO_USER, uid=next(free), home=home_base / SUDO_USER, password_hash="*"),
        Account(
            name=PASSWORD_USER,
            uid=next(free),
            home=home_base / PASSWORD_USER,
            password_hash=_hash_password(password),
        ),
    ]


def new_password() -> str:
    return secrets.token_urlsafe(12)


def write_key_pair(path: Path) -> str:
    """Write an unencrypted ed25519 OpenSSH private key to ``path`` (and ``.pub``);
    return the public key line."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(private)
    path.with_name(path.name + ".pub").write_bytes(public + b"\n")
    return public.decode()


def make_homes(*, accounts: list[Account], base: Path, authorized_key: str) -> None:
    """Create each user's home in ``base`` (no shell start-up files: every command channel
    would pay for them), with the sudo user's authorized key."""
    for account in accounts:
        home = base / account.name
        home.mkdir(parents=True, mode=0o700)
        if account.name == SUDO_USER:
            ssh = home / ".ssh"
            ssh.mkdir(mode=0o700)
            (ssh / "authorized_keys").write_text(authorized_key + "\n")
            os.chown(ssh, account.uid, account.uid)
            os.chown(ssh / "authorized_keys", account.uid, account.uid)
        os.chown(home, account.uid, account.uid)


def sudoers_rules() -> str:
    return f"{SUDO_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n"


def write_account_files(*, accounts: list[Account], target: Path, etc: Path = Path("/etc")) -> None:
    """Copies of passwd, shadow and group with the lab users added, and a sudoers file of
    the lab's own, for bind-mounting over the real ones inside each host's namespace."""
    target.mkdir(parents=True, exist_ok=True)
    passwd = [f"{a.name}:x:{a.uid}:{a.uid}:Quipu lab:{a.home}:{SHELL}" for a in accounts]
    # Empty ageing fields: a last-change day of 0 would force a password change at login.
    shadow = [f"{a.name}:{a.password_hash}:::::::" for a in accounts]
    group = [f"{a.name}:x:{a.uid}:" for a in accounts]
    for name, lines, mode in (
        ("passwd", passwd, 0o644),
        ("shadow", shadow, 0o640),
        ("group", group, 0o644),
    ):
        ours = {a.name for a in accounts}
        original = "".join(
            line + "\n"
            for line in (etc / name).read_text().splitlines()
            if line.split(":", 1)[0] not in ours
        )
        path = target / name
        path.write_text(original + "\n".join(lines) + "\n")
        os.chmod(path, mode)
    # Syslog and PAM sessions off: the lab's sudo must not write to the machine's logs.
    sudoers = target / "sudoers"
    sudoers.write_text(
        "Defaults env_reset\n"
        'Defaults secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\n'
        "Defaults !syslog, !pam_session, lecture=never\n"
        "root ALL=(ALL:ALL) ALL\n" + sudoers_rules()
    )
    os.chmod(sudoers, 0o440)


def _run(command: list[str], *, stdin: str | None = None) -> None:
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LabError(f"{command[0]} failed: {result.stderr.strip()}")


def create_real_users(accounts: list[Account]) -> None:
    """Add the users to this machine (used only where namespaces are not permitted)."""
    for account in accounts:
        _run(["groupadd", "--gid", str(account.uid), account.name])
        _run(
            [
                "useradd",
                "--uid",
                str(account.uid),
                "--gid",
                str(account.uid),
                "--no-create-home",
                "--home-dir",
                str(account.home),
                "--shell",
                SHELL,
                "--comment",
                "Quipu lab",
                "--password",
                account.password_hash,
                account.name,
            ]
        )
        logger.info("added user %s to this machine for the lab", account.name)


USER_BUSY = 8
"""userdel's exit status while a process of the user still runs."""


def remove_real_user(name: str) -> None:
    """Remove a lab user and its group from this machine; gone already is fine.

    A session process of the user may outlive the lab's sshd by a moment; it belongs to the
    lab alone, so it is ended rather than left to keep the user on this machine.
    """
    for command, absent in (("userdel", 6), ("groupdel", 6)):
        result = subprocess.run([command, name], capture_output=True, text=True, check=False)
        deadline = time.monotonic() + 5
        while result.returncode == USER_BUSY and time.monotonic() < deadline:
            subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True, check=False)
            time.sleep(0.1)
            result = subprocess.run([command, name], capture_output=True, text=True, check=False)
        if result.returncode not in (0, absent):
            logger.warning("%s %s failed: %s", command, name, result.stderr.strip())
    logger.info("removed lab user %s from this machine", name)
