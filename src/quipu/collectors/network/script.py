"""The one shell script that inspects a system: every fact command, framed by markers.

The script is fed to ``/bin/sh -s`` on the command channel's standard input, so it works
whatever the user's login shell is and no secret appears in a process list. Its body is a
single ``{ ... }`` group: the shell reads all of it before running anything, so no command
can swallow the rest of the script from standard input.

Each command runs in a subshell with standard input from /dev/null and standard error
dropped, between ``<marker> begin <name>`` and ``<marker> end <name> <exit status>`` lines.
The marker is random per run, so no command's output can end another's section.

Commands that need privilege run in a second script, started once through the credential's
become method; if that fails, the commands that also give something unprivileged run again
as the login user.
"""

from __future__ import annotations

import dataclasses
import enum
import secrets
import shlex

COMMAND_TIMEOUT_S = 30
"""A hung command (a package database lock, an unreachable entitlement server) is killed
after this long, so that it costs one fact and not the whole system."""

INSPECT_COMMAND = "/bin/sh -s"
"""The command the SSH channel runs; the script arrives on its standard input."""

PRIVILEGED = "privileged"
"""Section whose presence, exit status 0, proves the privileged script ran."""


class Privilege(enum.Enum):
    NONE = "none"
    """Runs as the login user."""
    PREFERRED = "preferred"
    """Runs privileged when possible, else as the login user (it then sees less)."""
    REQUIRED = "required"
    """Runs only when privileged."""


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    name: str
    shell: str
    privilege: Privilege = Privilege.NONE


_DEFAULT_KEY_FILES = ".ssh/authorized_keys .ssh/authorized_keys2"

# Expands AuthorizedKeysFile patterns (%h, %u, %U, %%; relative to the home) for every user.
_KEY_FILES_AWK = (
    r"""{ n = split(p, a, " "); for (i = 1; i <= n; i++) { f = a[i];"""
    r""" gsub(/%%/, "\001", f); gsub(/%h/, $6, f); gsub(/%u/, $1, f); gsub(/%U/, $3, f);"""
    r""" gsub(/\001/, "%", f); if (substr(f, 1, 1) != "/") f = $6 "/" f;"""
    r""" print $1 ":" f } }"""
)

COMMANDS: tuple[Command, ...] = (
    Command("uname", "uname -n -r -m -p"),
    Command("os_release", "r /etc/os-release || r /usr/lib/os-release"),
    Command("redhat_release", "r /etc/redhat-release"),
    Command("machine_id", "r /etc/machine-id"),
    Command(
        "cpuinfo",
        "grep -E '^(processor|physical id|core id|model name|Processor)[[:space:]]*:' "
        "/proc/cpuinfo",
    ),
    Command(
        "meminfo",
        'while read -r k v u; do [ "$k" = MemTotal: ] && echo "$k $v $u" && exit 0; done '
        "< /proc/meminfo; exit 1",
    ),
    Command("virt", "systemd-detect-virt --vm"),
    Command("ip_addresses", "ip -o addr show || ifconfig -a"),
    Command(
        "mac_addresses",
        'for f in /sys/class/net/*/address; do read -r a < "$f" && echo "$f:$a"; done; exit 0',
    ),
    Command(
        "rpm",
        "command -v rpm >/dev/null || exit 127; $W rpm -qa --qf "
        "'%{NAME}|%{DSAHEADER:pgpsig}|%{RSAHEADER:pgpsig}|%{SIGGPG:pgpsig}|%{SIGPGP:pgpsig}\\n'",
    ),
    Command(
        # Five times cheaper than dpkg-query, which parses every field of the database.
        "dpkg",
        "[ -r /var/lib/dpkg/status ] || exit 127; "
        "grep -c -E '^Status: [a-z]+ ok installed$' /var/lib/dpkg/status",
    ),
    Command("passwd", "getent passwd || cat /etc/passwd"),
    Command("login_defs", "grep -E '^[[:space:]]*UID_MIN' /etc/login.defs"),
    Command(
        "dmi",
        "for f in bios_vendor bios_version sys_vendor product_name product_uuid "
        "chassis_asset_tag; do read -r v < /sys/class/dmi/id/$f && echo "
        '"$f=$v"; done; [ -d /sys/class/dmi/id ]',
        Privilege.PREFERRED,
    ),
    Command(
        "dmidecode",
        "[ -d /sys/class/dmi/id ] && exit 0; command -v dmidecode >/dev/null || exit 127; "
        "$W dmidecode -t 0 -t 1 -t 3",
        Privilege.REQUIRED,
    ),
    Command(
        "virt_what",
        "command -v virt-what >/dev/null || exit 127; $W virt-what",
        Privilege.REQUIRED,
    ),
    Command(
        "subman",
        "command -v subscription-manager >/dev/null || exit 127; "
        "$W subscription-manager list --consumed",
        Privilege.REQUIRED,
    ),
    Command(
        "sshd_config",
        # The sshd that accepted this session may not read the default configuration: its
        # listener's command line names the file it was started with.
        """[ -n "$S" ] && printf '%s\\n' "$S" && exit 0; exit 1""",
        Privilege.REQUIRED,
    ),
    Command(
        "authorized_keys",
        "{ getent passwd || cat /etc/passwd; } | "
        f"""awk -F: -v p="${{A:-{_DEFAULT_KEY_FILES}}}" {shlex.quote(_KEY_FILES_AWK)} """
        """| while IFS=: read -r u f; do """
        """[ -f "$f" ] && [ -r "$f" ] && printf '%s file %s %s\\n' "$M" "$u" "$f" """
        """&& cat "$f" && echo; done; exit 0""",
        Privilege.PREFERRED,
    ),
    Command(
        "host_keys",
        """for k in ${K:-/etc/ssh/ssh_host_*_key}; do if [ -r "$k.pub" ]; then """
        """printf '%s file %s\\n' "$M" "$k.pub"; cat "$k.pub"; echo; elif [ -r "$k" ]; then """
        """printf '%s file %s\\n' "$M" "$k"; ssh-keygen -y -f "$k"; fi; done; exit 0""",
        Privilege.PREFERRED,
    ),
)

_PRELUDE = """\
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
LANG=C LC_ALL=C
export PATH LANG LC_ALL
M={marker}
W=
r() {{ while IFS= read -r l || [ -n "$l" ]; do printf '%s\\n' "$l"; done < "$1"; }}
command -v timeout >/dev/null 2>&1 && W='timeout {timeout}'
q() {{ printf '%s begin %s\\n' "$M" "$1"; (eval "$2") </dev/null 2>/dev/null; \
printf '\\n%s end %s %s\\n' "$M" "$1" "$?"; }}
"""

# Walks up from this shell to the sshd listener; its title keeps the arguments it was
# started with, ``-f`` among them when it does not read the default file.
_SSHD_SETTINGS = """\
C= p=$$
while [ "${p:-0}" -gt 1 ] 2>/dev/null; do
  read -r n 2>/dev/null < /proc/$p/comm || break
  if [ "$n" = sshd ]; then
    a=$(tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null)
    case $a in *' -f '*) C=${a#*' -f '}; C=${C%%' '*}; break;; esac
  fi
  read -r _ _ _ p _ 2>/dev/null < /proc/$p/stat || break
done
S=$(sshd -T ${C:+-f "$C"} 2>/dev/null) || S=
A= K=
while read -r k v; do
  case $k in authorizedkeysfile) A=$v;; hostkey) K="$K $v";; esac
done <<EOF
$S
EOF
"""


def new_marker() -> str:
    return f"QUIPU-{secrets.token_hex(12)}"


def _runs(commands: list[Command]) -> str:
    return "".join(f"q {c.name} {shlex.quote(c.shell)}\n" for c in commands)


def become_command(*, method: str, user: str, password: str | None) -> str | None:
    """The shell words that run ``/bin/sh -c "$P"`` through the become method, reading the
    password (if any) from standard input; None for a method this collector does not know."""
    run = '/bin/sh -c "$P"'
    feed = f"printf '%s\\n' {shlex.quote(password)} | " if password else ""
    quiet = "" if password else " </dev/null"
    target = shlex.quote(user)
    if method == "sudo":
        flags = "-S -p ''" if password else "-n"
        return f"{feed}sudo {flags} -u {target} -- {run}{quiet}"
    if method == "su":
        return f'{feed}su -s /bin/sh -c "$P" {target}{quiet}'
    if method == "doas":
        # doas reads a password only from a terminal; only a nopass rule can work here.
        return f"doas -n -u {target} {run} </dev/null"
    return None


def build(*, marker: str, become_method: str, become_user: str, become_password: str | None) -> str:
    """The whole inspection script for one system."""
    prelude = _PRELUDE.format(marker=marker, timeout=COMMAND_TIMEOUT_S)
    plain = [c for c in COMMANDS if c.privilege is Privilege.NONE]
    preferred = [c for c in COMMANDS if c.privilege is Privilege.PREFERRED]
    lifted = [c for c in COMMANDS if c.privilege is not Privilege.NONE]
    privileged = (
        prelude
        + _SSHD_SETTINGS
        + _runs([Command(PRIVILEGED, "id -u")])
        + _runs(lifted)
        + "exit 0\n"
    )
    become = become_command(method=become_method, user=become_user, password=become_password)
    lines = ["{", prelude + _runs(plain), f"P={shlex.quote(privileged)}"]
    # A root login needs no become method.
    lines.append('if [ "$(id -u)" = 0 ]; then /bin/sh -c "$P" </dev/null')
    if become is not None:
        lines.append(f"else {become} 2>/dev/null")
    else:
        lines.append("else false")
    lines.append("fi || {")
    lines.append(_runs(preferred).rstrip("\n") or ":")
    lines.append("}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def standalone(command: Command, *, marker: str) -> str:
    """``command`` as a shell text that runs on its own, as tools that send one command per
    task run it; privileged ones still need wrapping in the become method."""
    uses_settings = any(name in command.shell for name in ("$S", "${A", "${K"))
    settings = _SSHD_SETTINGS if uses_settings else ""
    return _PRELUDE.format(marker=marker, timeout=COMMAND_TIMEOUT_S) + settings + command.shell
