"""Who may open the dashboard: the operator's login, sessions, CSRF tokens and a cap on
login attempts. Framework-free: ``dashboard.py`` puts it behind aiohttp.

- **Password** (``web.dashboard.password``, normally ``${PIXELBOT_DASHBOARD_PASSWORD}``): kept
  only as an scrypt hash (``hashlib.scrypt``, a random salt, the standard interactive cost
  n=2**14, r=8, p=1) and compared in constant time. The plain text is dropped after hashing.
- **One-time login link** (when no password is set, which is allowed on localhost only): a
  random token printed at start; using it opens a session and prints a fresh link.
- **Sessions** are records held by the bot (so logging out really ends one, and a restart
  ends them all), named by a random id. The cookie carries that id signed with
  ``itsdangerous`` (HMAC-SHA256, a key made at start), HttpOnly, SameSite=Strict. A session
  lasts ``lifetime`` from login on the injected clock.
- **CSRF**: each session has its own random token; every change (a POST) must carry it. The
  login form itself carries a token tied to a short-lived signed cookie (double submit), so
  another site cannot log a browser in.
- **Login attempts**: at most ``ATTEMPTS`` per client address in any ``ATTEMPT_WINDOW``, right
  or wrong (the sliding-window limiter of ``domain/rate_limit.py``); past that the address is
  refused without the password being looked at, until the window has moved on. An IPv6
  client counts by its /64 (one machine has a whole /64 to pick addresses from). Over all
  addresses together, ``FAILURES`` wrong passwords in a window make every password login wait
  (many addresses guessing); sessions already open are not touched.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from itsdangerous import BadSignature, Signer

from pixelbot.clock import Clock
from pixelbot.domain.rate_limit import ReplyLimiter

__all__ = [
    "ATTEMPTS",
    "ATTEMPT_WINDOW",
    "DashboardAuth",
    "LoginResult",
    "PasswordHash",
    "Session",
    "clean_operator_name",
]

ATTEMPTS = 5
ATTEMPT_WINDOW = timedelta(minutes=15)
FAILURES = 30  # wrong passwords from all addresses together in a window
ALL = "*"  # the key every failure is counted under
OPERATOR_NAME_MAX = 32


@dataclass(frozen=True)
class PasswordHash:
    """An scrypt hash of the dashboard password (never the password itself)."""

    salt: bytes
    digest: bytes
    n: int = 2**14
    r: int = 8
    p: int = 1

    @classmethod
    def of(cls, password: str) -> PasswordHash:
        salt = secrets.token_bytes(16)
        return cls(salt, _scrypt(password, salt, 2**14, 8, 1))

    def matches(self, candidate: str) -> bool:
        return hmac.compare_digest(
            self.digest, _scrypt(candidate, self.salt, self.n, self.r, self.p)
        )


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)


def _same(expected: str, given: str) -> bool:
    """Constant-time equality of a secret and what a request sent (any text: compared as
    UTF-8 bytes, since ``compare_digest`` refuses non-ASCII ``str``)."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "replace"))


@dataclass
class Session:
    id: str
    operator: str  # the name the operator gave at login: the actor of what they change
    csrf: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class LoginResult:
    """``ok`` with a session; or refused: a wrong password/link, or too many tries
    (``retry_after`` seconds)."""

    session: Session | None = None
    throttled: bool = False
    retry_after: float = 0.0

    @property
    def ok(self) -> bool:
        return self.session is not None


def clean_operator_name(name: str) -> str | None:
    """The operator's name as it will be recorded, or None if it cannot be one."""
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > OPERATOR_NAME_MAX or not cleaned.isprintable():
        return None
    return cleaned


@dataclass
class DashboardAuth:
    """Logins and sessions of one running dashboard."""

    clock: Clock
    password: PasswordHash | None
    lifetime: timedelta = timedelta(hours=12)
    login_form_lifetime: timedelta = timedelta(hours=1)
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    _sessions: dict[str, Session] = field(default_factory=dict, repr=False)
    _link: str | None = field(default=None, repr=False)
    _attempts: ReplyLimiter = field(init=False, repr=False)
    _failures: ReplyLimiter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._attempts = ReplyLimiter(self.clock, ATTEMPTS, ATTEMPT_WINDOW)
        self._failures = ReplyLimiter(self.clock, FAILURES, ATTEMPT_WINDOW)  # from anywhere
        self._session_signer = Signer(
            self._key, salt="pixelbot.dashboard.session", digest_method=hashlib.sha256
        )
        self._form_signer = Signer(
            self._key, salt="pixelbot.dashboard.login-form", digest_method=hashlib.sha256
        )

    @classmethod
    def create(cls, clock: Clock, password: str | None, lifetime: timedelta) -> DashboardAuth:
        """With a password: password logins. Without: one-time links (``new_link``)."""
        hashed = PasswordHash.of(password) if password else None
        return cls(clock, hashed, lifetime)

    # -- logging in ---------------------------------------------------------------------------

    @property
    def uses_password(self) -> bool:
        return self.password is not None

    def new_link(self) -> str:
        """A fresh one-time login token (the previous one stops working)."""
        self._link = secrets.token_urlsafe(32)
        return self._link

    def link_valid(self, token: str) -> bool:
        return self._link is not None and _same(self._link, token)

    def retry_after(self, client: str) -> float:
        """Seconds before ``client`` may try to log in again (0: it may now)."""
        return self._attempts.retry_after(client)

    async def login_with_password(self, client: str, operator: str, candidate: str) -> LoginResult:
        """Check a password. scrypt is slow on purpose, so it runs off the event loop; the
        attempt is counted before it starts."""
        if self._failures.room(ALL) <= 0:  # many addresses guessing: everyone waits
            return LoginResult(throttled=True, retry_after=self._failures.retry_after(ALL))
        if not self._attempts.allow(client):
            return LoginResult(throttled=True, retry_after=self._attempts.retry_after(client))
        hashed = self.password
        if hashed is None or not await asyncio.to_thread(hashed.matches, candidate):
            self._failures.allow(ALL)
            return LoginResult()
        return LoginResult(session=self._open(operator))

    def login_with_link(self, client: str, operator: str, token: str) -> LoginResult:
        """Use the one-time link: it opens one session, then is spent."""
        if not self._attempts.allow(client):
            return LoginResult(throttled=True, retry_after=self._attempts.retry_after(client))
        if self.password is not None or not self.link_valid(token):
            return LoginResult()
        self._link = None  # once
        return LoginResult(session=self._open(operator))

    def _open(self, operator: str) -> Session:
        now = self.clock.now()
        self._drop_expired(now)
        session = Session(
            id=secrets.token_urlsafe(32),
            operator=operator,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + self.lifetime,
        )
        self._sessions[session.id] = session
        return session

    # -- sessions -------------------------------------------------------------------------------

    def cookie_for(self, session: Session) -> str:
        return self._session_signer.sign(session.id).decode("ascii")

    def session_for(self, cookie: str | None) -> Session | None:
        """The live session a cookie names, or None (missing, forged, ended or expired)."""
        if not cookie:
            return None
        try:
            session_id = self._session_signer.unsign(cookie).decode("ascii")
        except (BadSignature, UnicodeError):
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if self.clock.now() >= session.expires_at:
            del self._sessions[session_id]
            return None
        return session

    def close(self, session: Session) -> None:
        self._sessions.pop(session.id, None)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and _same(session.csrf, token or "")

    def _drop_expired(self, now: datetime) -> None:
        for session_id in [s.id for s in self._sessions.values() if now >= s.expires_at]:
            del self._sessions[session_id]

    # -- the login form's own CSRF token (double submit: cookie + form field) -------------------

    def login_form_token(self) -> tuple[str, str]:
        """(cookie value, form value) for a login form: the cookie is the signed nonce with
        the time it was issued, the form field the nonce."""
        nonce = secrets.token_urlsafe(24)
        issued = int(self.clock.now().timestamp())
        cookie = self._form_signer.sign(f"{nonce}.{issued}").decode("ascii")
        return cookie, nonce

    def login_form_ok(self, cookie: str | None, form_value: str | None) -> bool:
        if not cookie or not form_value:
            return False
        try:
            nonce, _, issued = self._form_signer.unsign(cookie).decode("ascii").rpartition(".")
            issued_at = int(issued)
        except (BadSignature, UnicodeError, ValueError):
            return False
        age = self.clock.now().timestamp() - issued_at
        if age < 0 or age > self.login_form_lifetime.total_seconds():
            return False
        return _same(nonce, form_value)
