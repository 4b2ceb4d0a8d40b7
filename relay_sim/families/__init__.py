"""The four API families the simulator speaks, one module each."""

from __future__ import annotations

from relay_sim.families.anthropic import AnthropicFamily
from relay_sim.families.base import Family
from relay_sim.families.gemini import GeminiFamily
from relay_sim.families.ollama import OllamaFamily
from relay_sim.families.openai import OpenAIFamily

__all__ = ["AnthropicFamily", "Family", "GeminiFamily", "OllamaFamily", "OpenAIFamily"]
