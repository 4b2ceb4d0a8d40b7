"""Where the catalogue in use came from (for start-up logs and ``relay config check``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class CatalogueOrigin(StrEnum):
    argument = "argument"  # a file named on the command line
    env = "RELAY_CONFIG"  # the file RELAY_CONFIG names
    cwd = "relay.yaml"  # ./relay.yaml in the working directory
    demo = "demo"  # the built-in demo catalogue (the provider simulator); also RELAY_DEMO


@dataclass(frozen=True)
class CatalogueSource:
    origin: CatalogueOrigin
    path: Path | None = None

    @property
    def is_demo(self) -> bool:
        return self.origin is CatalogueOrigin.demo

    def __str__(self) -> str:
        if self.origin is CatalogueOrigin.demo or self.path is None:
            return "the built-in demo catalogue (provider simulator)"
        if self.origin is CatalogueOrigin.env:
            return f"{self.path} (from RELAY_CONFIG)"
        if self.origin is CatalogueOrigin.cwd:
            return f"{self.path} (in the working directory)"
        return str(self.path)
