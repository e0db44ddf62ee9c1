"""Secrets sealed at rest: what can sign or post as this desk never lies in the database in clear.

The webhook signing secrets of API keys (verifying an HMAC needs the secret itself, so they are
encrypted, not hashed), each server's destination secrets and its webhook URLs (a Discord
webhook URL carries its token) are stored as ``sealed:v1:<key id>:<base64url(nonce, ciphertext)>``:
AES-256-GCM from ``cryptography`` with a random 96-bit nonce, and the place the value belongs
to (``api_keys:<key id>``, ``settings:<server>``) as associated data, so a sealed value copied
to another row does not open there.

The master key is 32 random bytes in base64 (``openssl rand -base64 32``), from
``THOTH_SECRET_KEY``. Without it, a SQLite desk makes one on first start into ``secret.key``
beside the database (0600, created at once or not at all, so two processes starting together
cannot make two keys). ``THOTH_SECRET_KEY`` may list several keys, comma-separated: the first
seals, every one opens, and each start re-seals what an older key sealed; that is how the
master key is rotated. The key id in each value is a fingerprint of its key (8 hex digits of
a SHA-256), so a wrong key is told apart from a damaged value.

The key never reaches a log: it is a ``SecretStr`` in the config, and ``MaskSecrets`` masks in
log lines every secret this process has sealed or opened.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from thothbot.core.errors import InvalidInput
from thothbot.core.masking import SECRET_PREFIX, mask

log = logging.getLogger(__name__)

SEALED = "sealed:v1:"
KEY_FILE = "secret.key"
KEY_BYTES = 32
NONCE_BYTES = 12
ENV = "THOTH_SECRET_KEY"
CHECK_CONTEXT = "sealing:check"
CHECK_VALUE = "thothbot"
LEAD = "the secret key does not open the stored secrets"
_SHORTEST_REMEMBERED = 8  # shorter strings would mask ordinary words in log lines


class SealingError(Exception):
    """The master key cannot open what is stored: one plain line, nothing changed."""


def new_key() -> str:
    """A fresh master key as ``THOTH_SECRET_KEY`` and the key file hold it."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def parse_keys(raw: str, where: str = ENV) -> list[bytes]:
    """The keys in ``THOTH_SECRET_KEY`` (or a key file): base64 of 32 bytes each, standard or
    URL-safe alphabet, padding optional, several separated by commas (the first seals)."""
    found = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        text = part.replace("-", "+").replace("_", "/")
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise InvalidInput(
                f"{where} must be 32 random bytes in base64 (make one with"
                " `openssl rand -base64 32`); several keys are separated by commas."
            )
        found.append(key)
    if not found:
        raise InvalidInput(f"{where} is empty: make a key with `openssl rand -base64 32`.")
    return found


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"thothbot secret key id\0" + key).hexdigest()[:8]


class Sealer:
    """Seals with the first key, opens with any of them."""

    def __init__(self, keys: Sequence[bytes], source: str) -> None:
        if not keys:
            raise ValueError("a sealer needs a key")
        self._keys = {key_id(k): AESGCM(k) for k in keys}
        self.key_id = key_id(keys[0])
        self.source = source  # where the key came from, for error messages

    def seal(self, value: str, context: str) -> str:
        remember(value)
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._keys[self.key_id].encrypt(nonce, value.encode(), context.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{SEALED}{self.key_id}:{body}"

    def open(self, value: str, context: str) -> str:
        """The clear value of a sealed one; a value that is not sealed is returned as is."""
        if not is_sealed(value):
            return value
        kid, _, body = value.removeprefix(SEALED).partition(":")
        aead = self._keys.get(kid)
        if aead is None:
            raise SealingError(
                f"{LEAD}: they were sealed with key {kid}, and {self.source} holds"
                f" {', '.join(self._keys)}. Set {ENV} to the key they were sealed with;"
                " nothing was changed."
            )
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            clear = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise SealingError(
                f"{LEAD}: the value stored for {context} does not decrypt with key {kid}"
                " (it was changed or damaged); nothing was changed."
            ) from None
        text = clear.decode()
        remember(text)
        return text

    def needs_sealing(self, value: str) -> bool:
        """Whether a stored value is in clear, or sealed with another key than the first."""
        return not value.startswith(f"{SEALED}{self.key_id}:")


def ephemeral() -> Sealer:
    """A sealer whose key lives as long as the process (an in-memory database)."""
    return Sealer([secrets.token_bytes(KEY_BYTES)], "a key made for this process")


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED)


def key_file(db_path: str | Path) -> Path:
    return Path(db_path).parent / KEY_FILE


def sealer_for(db_path: str, configured: str | None, *, may_create: bool) -> Sealer:
    """The sealer of a database: ``THOTH_SECRET_KEY`` when set, else the key file beside the
    database, made now when ``may_create`` (nothing sealed is stored yet)."""
    if configured:
        return Sealer(parse_keys(configured), ENV)
    path = key_file(db_path)
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        if not may_create:
            raise SealingError(
                f"{LEAD}: {ENV} is not set and the key file {path} is missing. Put the key"
                f" back there (or in {ENV}); nothing was changed."
            ) from None
        text = _create_key_file(path)
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "it is not text"
        raise SealingError(f"{LEAD}: cannot read the key file {path}: {reason}") from None
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            log.warning("%s can be read by other users: chmod 600 it", path)
    try:
        return Sealer(parse_keys(text, f"the key file {path}"), f"the key file {path}")
    except InvalidInput as error:
        raise SealingError(f"{LEAD}: {error}") from None


def _create_key_file(path: Path) -> str:
    """Write a new key to ``path`` whole or not at all; when another process won the race,
    its key. The key goes to a private temporary file first, then is linked into place:
    ``link`` fails when the name exists, so the first process's key stands."""
    key = new_key()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return path.read_text(encoding="ascii")
        except OSError as error:  # a file system without hard links
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            _create_directly(path, key)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    # INFO: `thothbot run` shows it; a throwaway database (the demo) stays quiet.
    log.info("made a new secret key in %s: keep a copy apart from the database backups", path)
    return key


def _create_directly(path: Path, key: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(key + "\n")
        file.flush()
        os.fsync(file.fileno())


# Secrets out of log lines

_remembered: set[str] = set()


def remember(secret: str) -> None:
    """Note a secret this process handles, so log lines and stored errors mask it."""
    parts = {secret, secret.removeprefix(SECRET_PREFIX)}
    if secret.startswith(("http://", "https://")):
        parts.add(secret.partition("?")[0].rstrip("/").rpartition("/")[2])  # a webhook's token
    _remembered.update(p for p in parts if len(p) >= _SHORTEST_REMEMBERED)


def scrub(text: str) -> str:
    """``text`` with every remembered secret masked, longest first (a URL before its token)."""
    for secret in sorted((s for s in _remembered if s in text), key=len, reverse=True):
        text = text.replace(secret, mask(secret))
    return text


class MaskSecrets(logging.Filter):
    """A handler filter that masks remembered secrets in messages and tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _remembered:
            return True
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def mask_logs() -> None:
    """Put ``MaskSecrets`` on every handler of the root logger (after logging is set up)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskSecrets) for f in handler.filters):
            handler.addFilter(MaskSecrets())
