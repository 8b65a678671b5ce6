"""Facts an access auditor needs: authorized keys, host keys, effective sshd settings."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from typing import Any

from quipu.collectors.network.framing import Section, subframes, succeeded

logger = logging.getLogger(__name__)

_KEY_TYPES = frozenset(
    {
        "ssh-rsa",
        "ssh-dss",
        "ssh-ed25519",
        "ssh-ed448",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "sk-ssh-ed25519@openssh.com",
    }
)
_CERT_SUFFIX = "-cert-v01@openssh.com"


def _fingerprint(key_type: str, blob_text: str) -> str | None:
    """OpenSSH's SHA256 fingerprint of a public key blob, or None when the blob is not
    valid base64 or does not hold a key of ``key_type``."""
    try:
        blob = base64.b64decode(blob_text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(blob) < 4:
        return None
    length = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + length] != key_type.encode():
        return None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _known_key_type(word: str) -> bool:
    base = word.removesuffix(_CERT_SUFFIX)
    return base in _KEY_TYPES or word in _KEY_TYPES


def _split_options(line: str) -> tuple[str, str]:
    """The leading options of an authorized_keys line, and the rest of it."""
    quoted = False
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and quoted:
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            break
        index += 1
    return line[:index], line[index:].strip()


def _option_list(options: str) -> list[str]:
    parts: list[str] = []
    current = ""
    quoted = False
    escaped = False
    for char in options:
        if escaped:
            current += char
            escaped = False
            continue
        if char == "\\" and quoted:
            current += char
            escaped = True
            continue
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return [part for part in parts if part]


def parse_public_key_line(line: str) -> dict[str, Any] | None:
    """One authorized_keys (or .pub) line as type, fingerprint, comment and options; None
    for blank, comment and malformed lines, which sshd ignores too."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    options: list[str] = []
    words = line.split(None, 1)
    if not _known_key_type(words[0]):
        raw_options, line = _split_options(line)
        options = _option_list(raw_options)
        words = line.split(None, 1)
        if not words or not _known_key_type(words[0]):
            return None
    key_type = words[0]
    rest = words[1].split(None, 1) if len(words) > 1 else []
    if not rest:
        return None
    fingerprint = _fingerprint(key_type, rest[0])
    if fingerprint is None:
        return None
    return {
        "type": key_type,
        "fingerprint": fingerprint,
        "comment": rest[1].strip() if len(rest) > 1 else None,
        "options": options,
    }


def parse_authorized_keys(
    section: Section | None, *, marker: str
) -> dict[str, list[dict[str, Any]]] | None:
    """Each user's authorized keys, with the file they are in; users without any are left
    out."""
    if not (section := succeeded(section)):
        return None
    keys: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, str]] = set()
    for words, lines in subframes(section, marker=marker):
        if len(words) != 2 or tuple(words) in seen:
            continue
        user, path = words
        seen.add((user, path))
        for line in lines:
            key = parse_public_key_line(line)
            if key is not None:
                keys.setdefault(user, []).append({"file": path, **key})
    return keys


def parse_host_keys(section: Section | None, *, marker: str) -> list[dict[str, Any]] | None:
    """The host's public keys: type, fingerprint and the file they were read from."""
    if not (section := succeeded(section)):
        return None
    keys: list[dict[str, Any]] = []
    for words, lines in subframes(section, marker=marker):
        path = " ".join(words)
        for line in lines:
            key = parse_public_key_line(line)
            if key is not None:
                keys.append({"file": path, "type": key["type"], "fingerprint": key["fingerprint"]})
    return keys


_MULTI_VALUED = frozenset(
    {
        "acceptenv",
        "hostcertificate",
        "hostkey",
        "include",
        "listenaddress",
        "permitlisten",
        "permitopen",
        "port",
        "setenv",
        "subsystem",
    }
)


def parse_sshd_config(section: Section | None) -> dict[str, Any] | None:
    """``sshd -T``: each setting's effective value; settings that may repeat (hostkey,
    listenaddress, ...) are lists."""
    if not (section := succeeded(section)):
        return None
    settings: dict[str, Any] = {}
    for line in section.lines():
        key, _, value = line.strip().partition(" ")
        if not re.fullmatch(r"[a-z0-9]+", key):
            continue
        value = value.strip()
        if key in _MULTI_VALUED:
            settings.setdefault(key, []).append(value)
        elif key in settings:
            previous = settings[key]
            settings[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            settings[key] = value
    return settings or None
