"""A request's profile (docs/routing.md): computed once, without network, where it enters."""

from relay_core.profile.build import parse_priority, profile_request
from relay_core.profile.models import Contract, Needs, Priority, Profile, TaskFamily

__all__ = [
    "Contract",
    "Needs",
    "Priority",
    "Profile",
    "TaskFamily",
    "parse_priority",
    "profile_request",
]
