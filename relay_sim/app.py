"""The simulator's ASGI app: many providers, one Starlette app, one :class:`SimState`."""

from __future__ import annotations

import time

from starlette.applications import Starlette

from relay_sim.admin import admin_routes
from relay_sim.config import SimConfig
from relay_sim.routes import provider_routes
from relay_sim.state import Clock, SimState


def create_app(config: SimConfig, *, clock: Clock | None = None) -> Starlette:
    """The simulator for ``config``. ``clock`` (seconds, default ``time.time``) drives the
    limit windows, daily resets and flapping; tests may pass their own."""
    state = SimState(config, clock or time.time)
    app = Starlette(routes=[*admin_routes(state), *provider_routes(state)])
    app.state.sim = state
    return app


def sim_state(app: Starlette) -> SimState:
    """The state behind an app made by :func:`create_app`."""
    state = app.state.sim
    if not isinstance(state, SimState):
        raise TypeError("not a simulator app")
    return state
