"""A brake on guessing a password: after a few failures a client is locked out for a while.

A client's first failures cost nothing (typos); the :attr:`LoginBrake.lock_after`-th locks it
out for ``lockout_s``, and each further one for twice as long as the last, up to
``lockout_max_s``. While a client is locked out its attempts are refused *unchecked*, the right
password too: otherwise the answer during a lockout would tell a guesser when it was right.
A success forgets the client's failures; so does ``forget_s`` without one.

Clients are whatever the caller names them by (an IP address). At most ``max_clients`` are
remembered, the least recently failed forgotten first, so many addresses cannot grow it
without bound. Not thread-safe: one event loop (Tornado's, in ``relay flower``) owns it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Failures:
    count: int
    last_at: float
    locked_until: float


@dataclass
class LoginBrake:
    lockout_s: float = 5.0
    lockout_max_s: float = 60.0
    lock_after: int = 3
    forget_s: float = 900.0
    max_clients: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _clients: OrderedDict[str, _Failures] = field(default_factory=OrderedDict, repr=False)

    def locked_for(self, client: str) -> float:
        """Seconds ``client`` must wait before an attempt is checked (0: it may try now)."""
        record = self._current(client)
        return max(0.0, record.locked_until - self.clock()) if record else 0.0

    def failed(self, client: str) -> None:
        now = self.clock()
        record = self._current(client)
        count = record.count + 1 if record else 1
        over = count - self.lock_after
        doubled = self.lockout_s * 2 ** min(over, 32)  # the exponent capped: no overflow
        lock = min(doubled, self.lockout_max_s) if over >= 0 else 0.0
        self._clients[client] = _Failures(count, now, now + lock)
        self._clients.move_to_end(client)
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)

    def _current(self, client: str) -> _Failures | None:
        record = self._clients.get(client)
        if record is not None and self.clock() - record.last_at > self.forget_s:
            del self._clients[client]
            return None
        return record
