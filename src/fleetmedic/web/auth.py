"""Who is asking, and may they: API tokens, browser sessions, roles and CSRF tokens.

Tokens come from ``FLEETMEDIC_TOKENS="name:role:token,..."`` (DESIGN.md). Tools send one as
``Authorization: Bearer TOKEN``; a browser trades one for a session at ``/login``. The session
cookie holds the principal's name, when it was issued and an HMAC over both and the token's own
digest, so it is useless elsewhere, expires, and dies when the token is changed or removed. The
cookie is HttpOnly and SameSite=Strict; on top of that, every state-changing request a cookie
authenticates must carry the CSRF token derived from that cookie (a form field or the
``X-CSRF-Token`` header). Bearer requests need none: a browser never attaches that header by
itself, which is what CSRF abuses.

Every comparison of a secret is constant-time (:func:`hmac.compare_digest`), and a token lookup
compares against every configured token, so the time taken does not say which one nearly matched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from fleetmedic.model.errors import InputError

ENV_VAR = "FLEETMEDIC_TOKENS"
MIN_TOKEN_LENGTH = 16
SESSION_SECONDS = 12 * 3600
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class Role(IntEnum):
    """Ordered: each role may do everything the ones below it may."""

    viewer = 1
    operator = 2
    admin = 3


@dataclass(frozen=True)
class Principal:
    """A person or tool the server knows, with the most it may do."""

    name: str
    role: Role

    def may(self, needed: Role) -> bool:
        return self.role >= needed


@dataclass(frozen=True)
class Credential:
    principal: Principal
    digest: bytes
    """SHA-256 of the token: what is compared and signed, so the token itself is not kept."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _entry(raw: str, position: int) -> Credential:
    """One ``name:role:token``; errors name the entry's position, never its token."""
    parts = raw.strip().split(":", 2)
    where = f"{ENV_VAR} entry {position}"
    if len(parts) != 3:
        raise InputError(f"{where}: expected name:role:token")
    name, role, token = (part.strip() for part in parts)
    if not _NAME.match(name):
        raise InputError(f"{where}: bad name {name!r} (letters, digits, . _ @ -)")
    if role not in Role.__members__:
        raise InputError(f"{where}: unknown role {role!r} (viewer, operator or admin)")
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise InputError(
            f"{where}: the token must be at least {MIN_TOKEN_LENGTH} characters without spaces"
        )
    return Credential(Principal(name, Role[role]), _digest(token))


def parse_tokens(value: str) -> list[Credential]:
    """Parse ``FLEETMEDIC_TOKENS``; any malformed entry is one :class:`InputError` line."""
    entries = [part for part in value.split(",") if part.strip()]
    if not entries:
        raise InputError(f"{ENV_VAR} is set but names no token (name:role:token,...)")
    creds = [_entry(raw, n) for n, raw in enumerate(entries, start=1)]
    names = [c.principal.name for c in creds]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"{ENV_VAR}: name {repeated[0]!r} appears more than once")
    if len({c.digest for c in creds}) != len(creds):
        raise InputError(f"{ENV_VAR}: two entries share a token")
    return creds


def generate_token() -> str:
    """A fresh random token (URL-safe, 256 bits), e.g. for ``demo --serve``."""
    return secrets.token_urlsafe(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


class Authority:
    """The configured credentials and the server's signing key: answers "who is this?"."""

    def __init__(self, credentials: Iterable[Credential], secret: bytes | None = None) -> None:
        self.credentials = tuple(credentials)
        self.by_name: Mapping[str, Credential] = {c.principal.name: c for c in self.credentials}
        self.secret = secret or secrets.token_bytes(32)

    def from_token(self, token: str) -> Principal | None:
        """The principal whose token this is; every configured token is compared."""
        digest = _digest(token)
        found = None
        for cred in self.credentials:
            if hmac.compare_digest(cred.digest, digest):
                found = cred.principal
        return found

    def from_bearer(self, header: str | None) -> Principal | None:
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.from_token(token.strip())

    def _sign(self, *parts: bytes) -> str:
        return _b64(hmac.new(self.secret, b"\x1f".join(parts), hashlib.sha256).digest())

    def session_for(self, principal: Principal, now: float | None = None) -> str:
        """The cookie value for a principal just logged in."""
        issued = str(int(now if now is not None else time.time()))
        cred = self.by_name[principal.name]
        mac = self._sign(b"session", principal.name.encode(), issued.encode(), cred.digest)
        return f"{principal.name}.{issued}.{mac}"

    def from_session(self, cookie: str | None, now: float | None = None) -> Principal | None:
        """The principal of a valid, unexpired session cookie; None for anything else."""
        if not cookie:
            return None
        name, _, rest = cookie.partition(".")
        issued, _, mac = rest.partition(".")
        cred = self.by_name.get(name)
        if cred is None or not issued.isdigit() or not mac:
            return None
        expected = self._sign(b"session", name.encode(), issued.encode(), cred.digest)
        if not hmac.compare_digest(expected, mac):
            return None
        age = (now if now is not None else time.time()) - int(issued)
        return cred.principal if 0 <= age <= SESSION_SECONDS else None

    def csrf_for(self, binding: str) -> str:
        """The CSRF token for a session (or a pre-login/local cookie): derived, never stored."""
        return self._sign(b"csrf", binding.encode())

    def csrf_ok(self, binding: str | None, offered: str | None) -> bool:
        if not binding or not offered:
            return False
        return hmac.compare_digest(self.csrf_for(binding), offered)
