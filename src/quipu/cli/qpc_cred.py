"""``qpc cred``: credentials for logging into systems and the servers of API sources."""

from __future__ import annotations

import enum
import sys
from typing import Annotated, Any

import typer

from quipu.cli.qpc_common import (
    AllFields,
    established,
    fail,
    print_json,
    read_key_file,
    read_secret,
    usage_error,
)
from quipu.cli.qpc_http import Api, clear_objects, connect
from quipu.domain.states import SourceType

app = typer.Typer(help="Manage credentials.", no_args_is_help=True)

PATH = "/api/v2/credentials/"
PASSWORD_QUESTION = "Provide a connection password."
PASSPHRASE_QUESTION = "Provide a passphrase for the SSH Key."
BECOME_QUESTION = "Provide a privilege escalation password to be used when running a network scan."
TOKEN_QUESTION = "Provide a token for authentication."
FIELDS = (
    "auth_type",
    "become_method",
    "become_user",
    "created_at",
    "cred_type",
    "has_auth_token",
    "has_become_password",
    "has_password",
    "has_ssh_key",
    "has_ssh_passphrase",
    "id",
    "name",
    "sources",
    "ssh_keyfile",
    "updated_at",
    "username",
    "vault_mount_point",
    "vault_secret_key",
    "vault_secret_path",
)
"""What the established client prints of a credential."""


class BecomeMethod(enum.StrEnum):
    SUDO = "sudo"
    SU = "su"
    PBRUN = "pbrun"
    PFEXEC = "pfexec"
    DOAS = "doas"
    DZDO = "dzdo"
    KSU = "ksu"
    RUNAS = "runas"


Name = Annotated[str, typer.Option("--name", help="Credential name.")]
Username = Annotated[str | None, typer.Option("--username", help="User to log in as.")]
PasswordFlag = Annotated[
    bool, typer.Option("--password", help="Ask for the password (read from stdin if piped).")
]
KeyFile = Annotated[
    str | None,
    typer.Option("--sshkeyfile", help="Private key file; - reads the key from stdin."),
]
PassphraseFlag = Annotated[
    bool, typer.Option("--sshpassphrase", help="Ask for the passphrase of the key.")
]
BecomeMethodOption = Annotated[
    BecomeMethod | None, typer.Option("--become-method", help="Privilege escalation method.")
]
BecomeUser = Annotated[
    str | None, typer.Option("--become-user", help="User to escalate to (default root).")
]
BecomePasswordFlag = Annotated[
    bool, typer.Option("--become-password", help="Ask for the privilege escalation password.")
]
TokenFlag = Annotated[
    bool,
    typer.Option("--token", help="Ask for an auth token (openshift, ansible and rhacs)."),
]
VaultPath = Annotated[
    str | None,
    typer.Option(
        "--vault-secret-path",
        help="Read the secret from HashiCorp Vault at this path (KV version 2) when scanning: "
        "the token of a token login (no --username), else the password.",
    ),
]
VaultKey = Annotated[
    str | None,
    typer.Option("--vault-secret-key", help="Key of the value in that Vault secret."),
]
VaultMount = Annotated[
    str | None,
    typer.Option("--vault-mount-point", help="Vault's KV version 2 engine (default secret)."),
]
CRED_TYPE_HELP = "Credential type: " + ", ".join(t.value for t in SourceType) + "."


def check_one_login(
    *,
    password: bool,
    sshkeyfile: str | None,
    token: bool,
    required: bool,
    vault_secret_path: str | None = None,
) -> None:
    """At most one way of logging in (exactly one with ``required``), in argparse's words."""
    given = [
        option
        for option, is_given in (
            ("--password", password),
            ("--sshkeyfile", sshkeyfile is not None),
            ("--token", token),
            ("--vault-secret-path", vault_secret_path is not None),
        )
        if is_given
    ]
    # argparse names the option that came second on the command line first.
    given.sort(key=_position_in_argv)
    if len(given) > 1:
        usage_error(f"argument {given[1]}: not allowed with argument {given[0]}")
    if required and not given:
        usage_error(
            "one of the arguments --password --sshkeyfile --token --vault-secret-path is required"
        )


def vault_fields(
    *, path: str | None, key: str | None, mount_point: str | None, adding: bool
) -> dict[str, str]:
    """The Vault options given, checked as the established client checks them."""
    if path is None and adding:
        for option, value in (("--vault-secret-key", key), ("--vault-mount-point", mount_point)):
            if value is not None:
                fail(f"{option} is allowed only with --vault-secret-path.")
    if path is not None and key is None and adding:
        fail("--vault-secret-key is required with --vault-secret-path.")
    given = {
        "vault_secret_path": path,
        "vault_secret_key": key,
        "vault_mount_point": mount_point,
    }
    return {field: value for field, value in given.items() if value is not None}


def _position_in_argv(option: str) -> int:
    return next(
        (i for i, arg in enumerate(sys.argv) if arg == option or arg.startswith(f"{option}=")),
        len(sys.argv),
    )


def find_credential(api: Api, *, name: str) -> dict[str, Any]:
    credential = api.find(PATH, name=name)
    if credential is None:
        fail(f'Credential "{name}" does not exist.')
    return credential


def _secrets(
    *,
    password: bool,
    sshkeyfile: str | None,
    sshpassphrase: bool,
    become_password: bool,
    token: bool,
) -> dict[str, str]:
    """The secrets asked for, read in a fixed order so a script can pipe them."""
    body: dict[str, str] = {}
    if password:
        body["password"] = read_secret(PASSWORD_QUESTION)
    if sshkeyfile is not None:
        body["ssh_key"] = read_key_file(sshkeyfile)
    if sshpassphrase:
        body["ssh_passphrase"] = read_secret(PASSPHRASE_QUESTION, what="a passphrase")
    if become_password:
        body["become_password"] = read_secret(BECOME_QUESTION)
    if token:
        body["auth_token"] = read_secret(TOKEN_QUESTION, prompt="Token: ", what="a token")
    return body


@app.command()
def add(
    name: Name,
    cred_type: Annotated[SourceType, typer.Option("--type", help=CRED_TYPE_HELP)],
    username: Username = None,
    password: PasswordFlag = False,
    sshkeyfile: KeyFile = None,
    sshpassphrase: PassphraseFlag = False,
    become_method: BecomeMethodOption = None,
    become_user: BecomeUser = None,
    become_password: BecomePasswordFlag = False,
    token: TokenFlag = False,
    vault_secret_path: VaultPath = None,
    vault_secret_key: VaultKey = None,
    vault_mount_point: VaultMount = None,
) -> None:
    """Add a credential."""
    check_one_login(
        password=password,
        sshkeyfile=sshkeyfile,
        token=token,
        required=True,
        vault_secret_path=vault_secret_path,
    )
    if sshpassphrase and sshkeyfile is None:
        usage_error("--sshpassphrase needs --sshkeyfile.")
    vault = vault_fields(
        path=vault_secret_path, key=vault_secret_key, mount_point=vault_mount_point, adding=True
    )
    with connect() as api:
        body: dict[str, Any] = {"name": name, "cred_type": cred_type.value, **vault}
        if username is not None:
            body["username"] = username
        if become_method is not None:
            body["become_method"] = become_method.value
        if become_user is not None:
            body["become_user"] = become_user
        body |= _secrets(
            password=password,
            sshkeyfile=sshkeyfile,
            sshpassphrase=sshpassphrase,
            become_password=become_password,
            token=token,
        )
        api.request("POST", PATH, json=body)
    typer.echo(f'Credential "{name}" was added.')


@app.command()
def edit(
    name: Name,
    username: Username = None,
    password: PasswordFlag = False,
    sshkeyfile: KeyFile = None,
    sshpassphrase: PassphraseFlag = False,
    become_method: BecomeMethodOption = None,
    become_user: BecomeUser = None,
    become_password: BecomePasswordFlag = False,
    token: TokenFlag = False,
    vault_secret_path: VaultPath = None,
    vault_secret_key: VaultKey = None,
    vault_mount_point: VaultMount = None,
) -> None:
    """Change a credential: only the options given change."""
    check_one_login(
        password=password,
        sshkeyfile=sshkeyfile,
        token=token,
        required=False,
        vault_secret_path=vault_secret_path,
    )
    changes: dict[str, Any] = vault_fields(
        path=vault_secret_path, key=vault_secret_key, mount_point=vault_mount_point, adding=False
    )
    if username is not None:
        changes["username"] = username
    if become_method is not None:
        changes["become_method"] = become_method.value
    if become_user is not None:
        changes["become_user"] = become_user
    asked = password or sshkeyfile is not None or sshpassphrase or become_password or token
    if not changes and not asked:
        fail(f'No arguments were provided to edit credential "{name}".')
    with connect() as api:
        credential = find_credential(api, name=name)
        changes |= _secrets(
            password=password,
            sshkeyfile=sshkeyfile,
            sshpassphrase=sshpassphrase,
            become_password=become_password,
            token=token,
        )
        api.request("PATCH", f"{PATH}{credential['id']}/", json=changes)
    typer.echo(f'Credential "{name}" was updated.')


@app.command("list")
def list_credentials(
    cred_type: Annotated[
        SourceType | None, typer.Option("--type", help="Only credentials of this type.")
    ] = None,
    all_fields: AllFields = False,
) -> None:
    """List credentials as JSON."""
    params = {"cred_type": cred_type.value} if cred_type else {}
    with connect() as api:
        credentials = api.all(PATH, params=params)
    if not credentials:
        # The established client says so on stderr and succeeds.
        typer.echo("No credentials exist yet.", err=True)
        return
    print_json([established(c, fields=FIELDS, all_fields=all_fields) for c in credentials])


@app.command()
def show(name: Name, all_fields: AllFields = False) -> None:
    """Show one credential as JSON."""
    with connect() as api:
        credential = find_credential(api, name=name)
    print_json(established(credential, fields=FIELDS, all_fields=all_fields))


@app.command()
def clear(
    name: Annotated[str | None, typer.Option("--name", help="Credential to remove.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Remove every credential.")] = False,
) -> None:
    """Remove one credential, or all of them."""
    clear_objects(
        name=name,
        all_=all_,
        path=PATH,
        noun="Credential",
        plural="credentials",
        used_by="source",
    )
