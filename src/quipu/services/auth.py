"""Users, passwords and API tokens: login, token checks, logout, the first admin."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from quipu.domain.errors import Forbidden, Unauthenticated
from quipu.store import Store
from quipu.store.tables import LoginFailure, Token, User

log = logging.getLogger(__name__)

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
FREE_FAILURES = 3
"""Failed logins allowed before each further attempt for that user is slowed down."""
MAX_DELAY_S = 5.0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for."""

    user_id: int
    username: str
    is_admin: bool
    token_id: int


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=_SCRYPT["r"], p=_SCRYPT["p"]
    )
    return hmac.compare_digest(candidate.hex(), digest)


def token_digest(token: str) -> str:
    """Tokens are stored as SHA-256 digests: a copy of the database logs no one in."""
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_admin(
    store: Store, *, data_dir: Path, password: str | None, now: datetime
) -> str | None:
    """Create user ``admin`` on first start; returns a generated password to show once."""
    with store.transaction() as s:
        if s.scalar(select(User.id).where(User.username == "admin")) is not None:
            return None
        generated = None
        if not password:
            generated = password = secrets.token_urlsafe(18)
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(data_dir / "admin-password", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(password + "\n")
        s.add(
            User(
                username="admin",
                password_hash=hash_password(password),
                is_admin=True,
                created_at=now,
            )
        )
    log.info("created user admin")
    return generated


def login_delay(store: Store, *, username: str) -> float:
    """Seconds to wait before checking this user's password (grows with recent failures)."""
    with store.transaction() as s:
        failure = s.get(LoginFailure, username)
        count = failure.count if failure else 0
    if count < FREE_FAILURES:
        return 0.0
    return float(min(MAX_DELAY_S, 0.25 * 2 ** (count - FREE_FAILURES)))


def login(store: Store, *, username: str, password: str, now: datetime, ttl_s: float) -> str:
    """A new token for a right username and password; Unauthenticated otherwise."""
    with store.transaction() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None or not verify_password(password, user.password_hash):
            failure = s.get(LoginFailure, username)
            if failure is None:
                s.add(LoginFailure(username=username, count=1, last_at=now))
            else:
                failure.count += 1
                failure.last_at = now
            wrong = Unauthenticated("Unable to log in with provided credentials.")
        else:
            wrong = None
            s.execute(update(LoginFailure).where(LoginFailure.username == username).values(count=0))
            token = secrets.token_urlsafe(32)
            s.add(
                Token(
                    token_hash=token_digest(token),
                    user_id=user.id,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl_s),
                )
            )
    if wrong is not None:
        raise wrong
    return token


def authenticate(store: Store, *, token: str, now: datetime) -> Principal:
    """The principal of a valid token; Unauthenticated for a bad, expired or revoked one."""
    with store.transaction() as s:
        row = s.execute(
            select(Token, User)
            .join(User, User.id == Token.user_id)
            .where(Token.token_hash == token_digest(token))
        ).first()
    if row is None:
        raise Unauthenticated("Invalid token.")
    tok, user = row
    if tok.revoked_at is not None:
        raise Unauthenticated("Invalid token: it was revoked (logged out).")
    if tok.expires_at <= now:
        raise Unauthenticated("Invalid token: it has expired; log in again.")
    return Principal(
        user_id=user.id, username=user.username, is_admin=user.is_admin, token_id=tok.id
    )


def logout(store: Store, *, principal: Principal, now: datetime) -> None:
    with store.transaction() as s:
        s.execute(update(Token).where(Token.id == principal.token_id).values(revoked_at=now))


def require_admin(principal: Principal, *, action: str) -> None:
    if not principal.is_admin:
        raise Forbidden(f"Only an administrator can {action}.")
