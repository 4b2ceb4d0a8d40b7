"""What each target's answers were worth, per task family: learned by every worker, read by
every router (docs/routing.md)."""

from relay_core.routing.outcomes.cache import OutcomeCache
from relay_core.routing.outcomes.sink import OutcomeSink
from relay_core.routing.outcomes.stats import Stats
from relay_core.routing.outcomes.store import OutcomeStore

__all__ = ["OutcomeCache", "OutcomeSink", "OutcomeStore", "Stats"]
