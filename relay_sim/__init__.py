"""Relay's provider simulator: one HTTP server impersonating many LLM providers at once.

Each simulated provider speaks its API family's real wire format (OpenAI, Gemini, Anthropic,
Ollama) under its own path prefix, enforces its limits, and fails on demand. See
``docs/simulator.md``.
"""

from __future__ import annotations

from relay_sim.app import create_app, sim_state
from relay_sim.ceiling import Ceiling
from relay_sim.config import SimConfig, SimModel, SimProvider, sim_base_url
from relay_sim.pooled import PooledCeiling, pooled_ceiling
from relay_sim.server import SimServer

__all__ = [
    "Ceiling",
    "PooledCeiling",
    "SimConfig",
    "SimModel",
    "SimProvider",
    "SimServer",
    "create_app",
    "pooled_ceiling",
    "sim_base_url",
    "sim_state",
]
