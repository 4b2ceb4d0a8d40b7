"""Routing policies from the catalogue (docs/routing.md, "Policies")."""
