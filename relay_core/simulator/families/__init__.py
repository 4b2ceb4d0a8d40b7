"""The four API families the simulator speaks, one module each."""

from __future__ import annotations

from relay_core.simulator.families.anthropic import AnthropicFamily
from relay_core.simulator.families.base import Family
from relay_core.simulator.families.gemini import GeminiFamily
from relay_core.simulator.families.ollama import OllamaFamily
from relay_core.simulator.families.openai import OpenAIFamily

__all__ = ["AnthropicFamily", "Family", "GeminiFamily", "OllamaFamily", "OpenAIFamily"]
