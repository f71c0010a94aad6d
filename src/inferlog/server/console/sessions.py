"""Console sign-in: an API key exchanged for a server-side session behind an HttpOnly cookie.

Why server-side: the cookie holds only a random session id, so a stolen cookie dies when the session
does (sign-out, expiry, a revoked key), and the key itself never reaches the browser again after the
sign-in form. Each request re-reads the key by its kid, so a key revoked through the API or the CLI
ends its console sessions at their next request: roles are those of the key, exactly as on the API.

Sessions live in the server's memory: a restart signs everyone out, which is the safe failure.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

COOKIE = "inferlog_session"
CSRF_COOKIE = "inferlog_csrf"  # the double-submit token of forms shown before there is a session
IDLE_SECONDS = 30 * 60.0  # a session unused this long ends
LIFETIME_SECONDS = 8 * 3600.0  # and none outlives a working day, used or not


@dataclass
class Session:
    """One signed-in person: which key (by kid), the form token, and when it ends."""

    kid: str
    csrf: str
    created: float
    last_seen: float
    purpose: str = ""  # the last purpose given, offered again in the next form

    def expired(self, now: float) -> bool:
        return now - self.last_seen > IDLE_SECONDS or now - self.created > LIFETIME_SECONDS


class Sessions:
    """The live sessions of one server, by id; thread-safe (pages render in the thread pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}

    def open(self, kid: str) -> tuple[str, Session]:
        """A new session for key ``kid``: its id (for the cookie) and the session."""
        now = time.monotonic()
        session_id = secrets.token_urlsafe(32)
        session = Session(kid=kid, csrf=secrets.token_urlsafe(32), created=now, last_seen=now)
        with self._lock:
            self._sweep(now)
            self._by_id[session_id] = session
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        """The live session with this id (its idle clock restarted), or None if unknown or expired."""
        now = time.monotonic()
        with self._lock:
            session = self._by_id.get(session_id)
            if session is None:
                return None
            if session.expired(now):
                del self._by_id[session_id]
                return None
            session.last_seen = now
            return session

    def close(self, session_id: str) -> None:
        with self._lock:
            self._by_id.pop(session_id, None)

    def expire(self, session_id: str, seconds_ago: float) -> None:
        """Age a session as if it were last used ``seconds_ago`` (what an idle browser tab does)."""
        with self._lock:
            session = self._by_id.get(session_id)
            if session is not None:
                session.last_seen -= seconds_ago
                session.created -= seconds_ago

    def _sweep(self, now: float) -> None:
        for session_id in [sid for sid, s in self._by_id.items() if s.expired(now)]:
            del self._by_id[session_id]

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_id)


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time equality of two form tokens; a missing one is never equal."""
    return bool(given) and bool(expected) and hmac.compare_digest(str(given), str(expected))
