"""API keys from the file named by `RAGSERVE_AUTH_KEYS_FILE`: parsed, hashed, compared in constant time.

The file is a YAML (or JSON) list of entries:

    - name: ops-portal                # shows up in metrics and logs (never the key)
      key_sha256: 5e88...             # hex SHA-256 of the key: `printf %s "$KEY" | sha256sum`
      role: user                      # user: read and generate; admin: also manage collections
      collections: [runbooks, postmortems]   # or ["*"]
      requests_per_minute: 60         # optional
      tokens_per_minute: 20000        # optional
    - name: local-dev
      key: dev-key-not-for-production # plain keys are hashed on load; for local use only

A top-level mapping `{keys: [...]}` is accepted too. The file is re-read when it changes (its
mtime, size or inode, checked at most every `auth.reload_check_s`); a broken new version is
logged and the previous keys stay in force.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from service.auth.principal import ALL_COLLECTIONS, Permission, Principal, Role

logger = logging.getLogger("ragserve.auth")
audit_logger = logging.getLogger("ragserve.audit")

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# Plain keys in the file must look random: a guessable key is as good as none (docs/security.md).
MIN_KEY_LENGTH = 32
MIN_KEY_DISTINCT = 12


def weak_key_reason(key: str) -> str | None:
    """Why a plain key is too weak to accept, or None (length and variety: `secrets.token_urlsafe(32)`)."""
    if len(key) < MIN_KEY_LENGTH:
        return f"is {len(key)} characters; use at least {MIN_KEY_LENGTH} random ones"
    if len(set(key)) < MIN_KEY_DISTINCT:
        return f"uses only {len(set(key))} distinct characters; use a random key"
    return None


class KeyFileError(ValueError):
    """The keys file is missing, unreadable or invalid; the message names the file and the entry."""


class KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME_PATTERN)
    key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    key: str | None = Field(default=None)
    role: Role = "user"
    collections: list[str] = Field(default_factory=list)
    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)
    permissions: list[Permission] = Field(default_factory=list)

    @field_validator("key")
    @classmethod
    def _strong(cls, v: str | None) -> str | None:
        if v is not None and (why := weak_key_reason(v)) is not None:
            raise ValueError(
                f'key {why} (make one with: python -c \'import secrets; print("rs-" + '
                "secrets.token_urlsafe(32))'), or give key_sha256 of such a key"
            )
        return v

    @field_validator("collections", mode="before")
    @classmethod
    def _star(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _one_secret(self) -> KeyEntry:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("give exactly one of key_sha256 (recommended) or key")
        if not self.collections and not self.permissions:
            raise ValueError("collections: list at least one collection (or '*'), or give permissions")
        return self

    def digest(self) -> bytes:
        if self.key_sha256 is not None:
            return bytes.fromhex(self.key_sha256)
        assert self.key is not None
        return hashlib.sha256(self.key.encode()).digest()

    def principal(self) -> Principal:
        names = None if ALL_COLLECTIONS in self.collections else frozenset(self.collections)
        return Principal(
            name=self.name,
            role=self.role,
            collections=names,
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
            permissions=frozenset(self.permissions),
        )


def parse_keys(text: str, *, source: str) -> list[tuple[bytes, Principal]]:
    """(SHA-256 digest, principal) per entry; KeyFileError with the entry's position on any mistake."""
    try:
        data = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise KeyFileError(f"{source}: not valid YAML/JSON: {exc}") from exc
    if isinstance(data, dict) and "keys" in data:
        data = data["keys"]
    if not isinstance(data, list):
        raise KeyFileError(f"{source}: expected a list of keys (or a mapping with 'keys')")
    out: list[tuple[bytes, Principal]] = []
    seen_names: set[str] = set()
    seen_digests: set[bytes] = set()
    for i, raw in enumerate(data):
        try:
            entry = KeyEntry.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err.get("loc", ()))
            where = f"entry {i}" + (f" ({raw.get('name')})" if isinstance(raw, dict) else "")
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            raise KeyFileError(f"{source}: {where}: {loc + ': ' if loc else ''}{msg}") from exc
        digest = entry.digest()
        if entry.name in seen_names:
            raise KeyFileError(f"{source}: entry {i}: the name '{entry.name}' is used twice")
        if digest in seen_digests:
            raise KeyFileError(f"{source}: entry {i} ({entry.name}): the same key is listed twice")
        seen_names.add(entry.name)
        seen_digests.add(digest)
        out.append((digest, entry.principal()))
    return out


def _read(path: Path) -> tuple[list[tuple[bytes, Principal]], tuple[int, int, int]]:
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the keys file: {exc.strerror or exc}") from exc
    return parse_keys(text, source=str(path)), (st.st_ino, st.st_mtime_ns, st.st_size)


class KeyStore:
    """The keys of one file, reloaded on change; `authenticate()` maps a presented key to its principal."""

    def __init__(
        self,
        path: Path,
        *,
        reload_check_s: float = 2.0,
        on_reload: Callable[[str, int], None] | None = None,
    ) -> None:
        self.path = path
        self.reload_check_s = reload_check_s
        self._on_reload = on_reload
        self._lock = threading.Lock()
        self._entries, self._stamp = _read(path)  # a broken file at start-up is fatal, on purpose
        self._checked_at = time.monotonic()
        logger.info("loaded %d API keys from %s", len(self._entries), path)
        if on_reload is not None:
            on_reload("loaded", len(self._entries))

    @property
    def names(self) -> list[str]:
        return [p.name for _, p in self._entries]

    def authenticate(self, presented: str) -> Principal | None:
        """The principal whose key this is, or None. Every entry is compared, in constant time each."""
        self.maybe_reload()
        digest = hashlib.sha256(presented.encode()).digest()
        found: Principal | None = None
        for known, principal in self._entries:
            if hmac.compare_digest(digest, known):
                found = principal
        return found

    def maybe_reload(self) -> None:
        """Re-read the file when its stat changed; cheap enough to call on every request."""
        now = time.monotonic()
        if now - self._checked_at < self.reload_check_s:
            return
        with self._lock:
            if now - self._checked_at < self.reload_check_s:
                return
            self._checked_at = now
            try:
                st = os.stat(self.path)
                stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            except OSError as exc:
                if self._stamp != (0, 0, 0):
                    logger.error("keys file %s is gone (%s); keeping the %d keys loaded", self.path,
                                 exc.strerror, len(self._entries))  # fmt: skip
                    self._stamp = (0, 0, 0)
                    self._report("error")
                return
            if stamp == self._stamp:
                return
            try:
                entries, stamp = _read(self.path)
            except KeyFileError as exc:
                logger.error("%s; keeping the %d keys loaded before", exc, len(self._entries))
                self._stamp = stamp  # do not re-parse the same broken version on every request
                self._report("error")
                return
            self._entries, self._stamp = entries, stamp
            audit_logger.info(
                "api keys reloaded from %s: %d keys", self.path, len(entries),
                extra={"action": "keys.reload", "keys": ",".join(p.name for _, p in entries)},
            )  # fmt: skip
            self._report("reloaded")

    def _report(self, outcome: str) -> None:
        if self._on_reload is not None:
            self._on_reload(outcome, len(self._entries))
