"""Where batches and files live in Redis (every key under Relay's prefix).

{p}:file:{id}                 file record (JSON string)
{p}:files:{owner}             the owner's files (sorted set: id -> created_at)
{p}:batch:{id}                the batch (hash: OpenAI fields, counters, cursor, pacing,
                                  the providers' recent answer time)
{p}:batch:{id}:lines          the line index (list: "offset length route custom_id")
{p}:batch:{id}:routes         distinct model selections of the lines (list of JSON)
{p}:batch:{id}:results        one entry per finished custom_id (hash: "o"/"e" + JSON line)
{p}:batch:{id}:inflight       dispatched lines (sorted set: index -> next sign of life due)
{p}:batch:{id}:assigned       each line in flight's provider, its first candidate (hash)
{p}:batch:{id}:flying         lines in flight per provider: its share of the window (hash)
{p}:batch:{id}:providers      per provider "name:ok" / "name:err" counts (hash)
{p}:batch:{id}:tries          failed upstream attempts per line (hash: index -> count)
{p}:batch:{id}:last           each such line's latest failure (hash: index -> "e" + JSON line)
{p}:batch:{id}:lease:{what}   who validates / finalizes it now (string with a TTL)
{p}:batches:{owner}           the owner's batches (sorted set: id -> created_at)
{p}:batches:active            batches the workers must look after (set)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BatchKeys:
    prefix: str
    id: str

    @property
    def meta(self) -> str:
        return f"{self.prefix}:batch:{self.id}"

    @property
    def lines(self) -> str:
        return f"{self.meta}:lines"

    @property
    def routes(self) -> str:
        return f"{self.meta}:routes"

    @property
    def results(self) -> str:
        return f"{self.meta}:results"

    @property
    def inflight(self) -> str:
        return f"{self.meta}:inflight"

    @property
    def assigned(self) -> str:
        return f"{self.meta}:assigned"

    @property
    def flying(self) -> str:
        return f"{self.meta}:flying"

    @property
    def providers(self) -> str:
        return f"{self.meta}:providers"

    @property
    def tries(self) -> str:
        return f"{self.meta}:tries"

    @property
    def last(self) -> str:
        return f"{self.meta}:last"

    def lease(self, what: str) -> str:
        return f"{self.meta}:lease:{what}"

    def all(self) -> list[str]:
        leases = [self.lease(w) for w in ("validate", "finalize")]
        fixed = [self.meta, self.lines, self.routes, self.results, self.inflight]
        flight = [self.assigned, self.flying]
        return [*fixed, *flight, self.providers, self.tries, self.last, *leases]


def file_key(prefix: str, file_id: str) -> str:
    return f"{prefix}:file:{file_id}"


def owner_files(prefix: str, owner: str) -> str:
    return f"{prefix}:files:{owner}"


def owner_batches(prefix: str, owner: str) -> str:
    return f"{prefix}:batches:{owner}"


def active_batches(prefix: str) -> str:
    return f"{prefix}:batches:active"
