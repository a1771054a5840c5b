"""Staff login: server-side sessions that expire, and a back-off that makes guessing the password slow.

Pure Python (no Gradio): ``ui/staff.py`` keeps a session's token in a Gradio
``State``, which lives on the server (a browser cannot send one), and every
staff event checks it here before it reads or writes staff data.

The back-off (README, docs/SECURITY.md): an address may fail ``free_tries``
times in ``window_s``; after that each further try waits twice as long as the
one before (2 s, 4 s, … up to ``max_wait_s``) counted from its last failure.
Across all addresses, more than ``global_free_tries`` failures in the window
slow every login the same way, so a guesser spreading over many addresses
gains nothing. A try during a wait is refused without looking at the password.
"""
from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable

from core.text import clip

logger = logging.getLogger(__name__)

MAX_TRACKED_CLIENTS = 10_000  # addresses remembered for the back-off; the oldest are forgotten first
UPLOAD_TICKET_S = 60.0  # a login's upload ticket must be exchanged for the upload cookie within this
UPLOAD_SESSION_ROUTE = "/staff/upload-session"  # where the page exchanges it (reportqa.uploads)
TICKET_HEADER = "x-upload-ticket"


def check_password(credentials: tuple[str, str] | None, user: str, password: str) -> bool:
    """Constant-time comparison of both fields (no early exit on the user name)."""
    if credentials is None:
        return False
    user_ok = hmac.compare_digest((user or "").encode("utf-8", "replace"), credentials[0].encode("utf-8"))
    password_ok = hmac.compare_digest((password or "").encode("utf-8", "replace"), credentials[1].encode("utf-8"))
    return user_ok and password_ok


@dataclass(frozen=True)
class LoginOutcome:
    token: str | None  # the new session's token, None when refused
    wait_s: float = 0.0  # when refused by the back-off: seconds until the next try is looked at


class LoginThrottle:
    """Failed logins per address and in all, over a sliding window; says how long a new try must wait."""

    def __init__(self, free_tries: int = 5, global_free_tries: int = 30, window_s: float = 900.0,
                 max_wait_s: float = 900.0, clock: Callable[[], float] = time.monotonic):
        self.free_tries, self.global_free_tries = free_tries, global_free_tries
        self.window_s, self.max_wait_s = window_s, max_wait_s
        self.clock = clock
        self._by_client: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def _recent(self, failures: deque[float], now: float) -> deque[float]:
        while failures and now - failures[0] > self.window_s:
            failures.popleft()
        return failures

    def _wait(self, failures: deque[float], free: int, now: float) -> float:
        extra = len(failures) - free
        if extra < 0:
            return 0.0
        return max(0.0, min(2.0 ** (extra + 1), self.max_wait_s) - (now - failures[-1]))

    def wait_s(self, client: str) -> float:
        """Seconds ``client`` must still wait before a try is looked at (0: now)."""
        with self._lock:
            now = self.clock()
            mine = self._recent(self._by_client.get(client, deque()), now)
            return max(self._wait(mine, self.free_tries, now),
                       self._wait(self._recent(self._all, now), self.global_free_tries, now))

    def failed(self, client: str) -> int:
        """Record a failure; returns how many ``client`` has in the window."""
        with self._lock:
            now = self.clock()
            mine = self._by_client.pop(client, None) or deque()
            self._by_client[client] = mine  # most recent last
            while len(self._by_client) > MAX_TRACKED_CLIENTS:
                self._by_client.popitem(last=False)
            mine.append(now)
            self._all.append(now)
            self._recent(self._all, now)
            return len(self._recent(mine, now))

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._by_client.pop(client, None)


@dataclass
class _Session:
    created: float
    last_seen: float
    client: str


class StaffSessions:
    """Logged-in staff sessions, by random token; a session ends at logout, after ``idle_s`` without use,
    or ``max_age_s`` after login, whichever comes first.

    Uploads: Gradio's upload route is plain HTTP and cannot see a session's token (a server-side
    ``State``). So a login also hands the page a one-time ticket (``upload_ticket``), which the page
    exchanges at once for a separate random upload token (``redeem_ticket``), kept in an HttpOnly,
    SameSite=Strict cookie; the server lets an upload through only when that token belongs to a live
    session (``upload_allowed``). Logout or expiry ends the upload token with the session.
    """

    def __init__(self, credentials: tuple[str, str] | None, idle_s: float = 1800.0, max_age_s: float = 8 * 3600.0,
                 throttle: LoginThrottle | None = None, clock: Callable[[], float] = time.monotonic):
        self.credentials = credentials
        self.idle_s, self.max_age_s = idle_s, max_age_s
        self.clock = clock
        self.throttle = throttle or LoginThrottle(clock=clock)
        self._sessions: dict[str, _Session] = {}
        self._tickets: dict[str, tuple[str, float]] = {}  # ticket -> (session token, when issued)
        self._uploads: dict[str, str] = {}  # upload token -> session token
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.credentials is not None

    def log_in(self, user: str, password: str, client: str) -> LoginOutcome:
        """A new session for the right user and password, unless the back-off says wait; every failure is logged
        (the user name clipped, never the password)."""
        wait = self.throttle.wait_s(client)
        if wait > 0:
            logger.warning("staff login from %s refused unchecked: too many failures, %.0f s to wait", client, wait)
            return LoginOutcome(None, wait)
        if not check_password(self.credentials, user, password):
            failures = self.throttle.failed(client)
            logger.warning("staff login failed for user %r from %s (%d failure(s) from this address in %.0f min)",
                           clip(user, 40), client, failures, self.throttle.window_s / 60)
            return LoginOutcome(None, 0.0)
        self.throttle.succeeded(client)
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._expire(now)
            self._sessions[token] = _Session(now, now, client)
        logger.info("staff login for %r from %s", clip(user, 40), client)
        return LoginOutcome(token)

    def valid(self, token: object) -> bool:
        """Whether ``token`` names a live session; using it keeps it alive (up to ``max_age_s``)."""
        if not isinstance(token, str) or not token:
            return False
        now = self.clock()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return False
            if now - session.last_seen > self.idle_s or now - session.created > self.max_age_s:
                del self._sessions[token]
                return False
            session.last_seen = now
            return True

    def log_out(self, token: object) -> None:
        with self._lock:
            if isinstance(token, str):
                self._sessions.pop(token, None)
                self._forget_uploads()

    def _expire(self, now: float) -> None:
        for token in [t for t, s in self._sessions.items()
                      if now - s.last_seen > self.idle_s or now - s.created > self.max_age_s]:
            del self._sessions[token]
        self._forget_uploads()

    def _forget_uploads(self) -> None:
        """Upload tokens and tickets of sessions that ended (under the lock)."""
        now = self.clock()
        self._uploads = {u: t for u, t in self._uploads.items() if t in self._sessions}
        self._tickets = {k: (t, at) for k, (t, at) in self._tickets.items()
                         if t in self._sessions and now - at <= UPLOAD_TICKET_S}

    def upload_ticket(self, token: object) -> str | None:
        """A one-time ticket the page of a live session exchanges for its upload cookie; None otherwise."""
        if not self.valid(token):
            return None
        ticket = secrets.token_urlsafe(32)
        with self._lock:
            self._forget_uploads()
            self._tickets[ticket] = (token, self.clock())
        return ticket

    def redeem_ticket(self, ticket: object) -> str | None:
        """A new upload token for the session that was given ``ticket`` (once, within UPLOAD_TICKET_S)."""
        if not isinstance(ticket, str) or not ticket:
            return None
        with self._lock:
            found = self._tickets.pop(ticket, None)
        if found is None or self.clock() - found[1] > UPLOAD_TICKET_S or not self.valid(found[0]):
            return None
        upload = secrets.token_urlsafe(32)
        with self._lock:
            self._uploads[upload] = found[0]
        return upload

    def upload_allowed(self, upload_token: object) -> bool:
        """Whether an upload carrying ``upload_token`` (the cookie) comes from a live staff session."""
        if not isinstance(upload_token, str) or not upload_token:
            return False
        with self._lock:
            token = self._uploads.get(upload_token)
        return token is not None and self.valid(token)
