"""Pseudonymisation: person identifiers become keyed hashes before they enter a workspace.

The hash is HMAC-SHA256 (RFC 2104) under a per-workspace secret key, truncated to
80 bits and prefixed with ``p_``. The same identifier always gets the same pseudonym in
one workspace (so repeated loads line up) and a different one in another workspace
(so two workspaces cannot be joined without both keys). Without the key, a pseudonym
cannot be reversed by trying candidate identifiers.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_BYTES = 32
PSEUDONYM_HEX_CHARS = 20  # 80 bits: collision odds for 10M people are about 4e-11
PREFIX = "p_"


def create_key(path: Path) -> None:
    """Write a new random key to `path`, readable by its owner only (mode 0600); never overwrites."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(KEY_BYTES) + "\n")


def read_key(path: Path) -> bytes:
    return bytes.fromhex(path.read_text().strip())


def pseudonymise(identifier: str, key: bytes) -> str:
    """The pseudonym of one identifier (for tests and for looking a person up by their source ID)."""
    digest = hmac.new(key, identifier.encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:PSEUDONYM_HEX_CHARS]


def sql_macro(key: bytes, name: str = "pseudonymise") -> str:
    """A DuckDB `CREATE TEMP MACRO` computing the same pseudonym as `pseudonymise` inside SQL.

    HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)), with K zero-padded to SHA-256's 64-byte block.
    """
    block = key.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in block).hex()
    opad = bytes(b ^ 0x5C for b in block).hex()
    inner = f"unhex(sha256(unhex('{ipad}') || CAST(x AS VARCHAR)::BLOB))"
    return (
        f"CREATE OR REPLACE TEMP MACRO {name}(x) AS "
        f"CASE WHEN x IS NULL THEN NULL ELSE '{PREFIX}' || left(sha256(unhex('{opad}') || {inner}), {PSEUDONYM_HEX_CHARS}) END"
    )
