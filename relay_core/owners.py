"""Owner ids: what a gateway key is called everywhere it is stored or shown.

An owner id names a tenant in Redis key names (``{prefix}:files:{owner}``, usage counters),
in records, task messages and ``GET /v1/usage``. It is an HMAC-SHA256 of the gateway key,
keyed by the server's owner secret: someone who reads an owner id (in Redis, Flower, a
log, a usage answer) cannot test guessed gateway keys against it without that secret.

The secret is ``RELAY_OWNER_SECRET`` when set (set it when API processes do not share a data
folder); otherwise it is generated once and kept in ``{RELAY_DATA_DIR}/owner-secret``, mode
0600, which every process with that data folder reads (``relay up`` and the compose
deployment's services share it). Changing the secret changes every owner id: each tenant's
files, batches and usage then belong to a stranger (see :mod:`relay_core.owner_migration`
for the move from the unkeyed ids of earlier versions).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from relay_core.settings import Settings

log = logging.getLogger("relay.owners")

KEPT_IN = "owner-secret"  # the file under the data folder
SECRET_BYTES = 32
ID_HEX = 15  # "k" + 15 hex digits: the shape earlier versions' ids had
MIN_SECRET_CHARS = 32


class OwnerSecretError(Exception):
    """The kept owner secret cannot be used (the message says what to do)."""


def owner_id(secret: bytes, gateway_key: str) -> str:
    digest = hmac.new(secret, gateway_key.encode(), hashlib.sha256).hexdigest()
    return "k" + digest[:ID_HEX]


def legacy_owner_id(gateway_key: str) -> str:
    """The unkeyed id earlier versions stored data under (read only to move that data)."""
    return "k" + hashlib.sha256(gateway_key.encode()).hexdigest()[:ID_HEX]


def owner_secret(settings: Settings) -> bytes:
    """The configured secret, else the one kept under the data folder (made on first use)."""
    if settings.owner_secret is not None:
        return settings.owner_secret.get_secret_value().encode()
    return kept_secret(settings.data_dir / KEPT_IN)


def kept_secret(path: Path) -> bytes:
    """The secret in ``path``; a new one written there (0600, atomically) if there is none.

    Processes starting together agree: the file appears whole or not at all (written aside,
    then hard-linked into place; the loser of a race reads the winner's).
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(SECRET_BYTES) + "\n")
        try:
            os.link(draft, path)
            log.info("generated the owner secret in %s", path)
        except FileExistsError:
            pass  # another process made it first: use theirs
    finally:
        draft.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o): now 0600", path, mode)
        path.chmod(0o600)
    value = path.read_text().strip()
    if len(value) < MIN_SECRET_CHARS:
        raise OwnerSecretError(
            f"{path} holds no usable owner secret (under 32 characters): delete it to have "
            "a new one made (every owner id changes), or set RELAY_OWNER_SECRET"
        )
    return value.encode()
