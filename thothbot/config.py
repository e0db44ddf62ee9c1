"""Configuration from an injectable mapping (the environment after ``.env``); no work at import."""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dotenv import load_dotenv
from pydantic import SecretStr

from thothbot import sealing
from thothbot.core.errors import InvalidInput

DEFAULT_DB_PATH = "./data/thothbot.db"
N = TypeVar("N", int, float)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
DEFAULT_INGRESS_HOST = "127.0.0.1"
DEFAULT_INGRESS_PORT = 8080
DEFAULT_INGRESS_RATE = 50.0
DEFAULT_INGRESS_BURST = 100
DEFAULT_INGRESS_HEAD_TIMEOUT = 10.0
DEFAULT_INGRESS_BODY_TIMEOUT = 30.0
DEFAULT_INGRESS_AUTH_FAILURES = 10
DEFAULT_INGRESS_AUTH_WINDOW = 60.0
DEFAULT_DISCORD_API_URL = "https://discord.com/api/v10"
DEFAULT_DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"
DEFAULT_CLOSE_DELAY = 10.0


class StartupFailure(Exception):
    """Why ``thothbot run`` (or ``ingress``) cannot start, in one line for the operator."""


@dataclass(frozen=True, slots=True)
class Config:
    db_path: str = DEFAULT_DB_PATH
    discord_token: SecretStr | None = None
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one object a line, for a log collector
    # Servers to sync slash commands to at start (instant); none means global commands.
    guild_ids: tuple[int, ...] = ()
    # Where Discord is: a REST proxy, or the local sandbox (``thothbot demo``, the e2e tests).
    discord_api_url: str = DEFAULT_DISCORD_API_URL
    discord_gateway_url: str = DEFAULT_DISCORD_GATEWAY_URL
    # The urgency classifier's OpenAI-compatible endpoint; no model means the heuristic decides.
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    # The HTTP ingress: where it listens, and each API key's request rate (token bucket).
    ingress_host: str = DEFAULT_INGRESS_HOST
    ingress_port: int = DEFAULT_INGRESS_PORT
    ingress_rate: float = DEFAULT_INGRESS_RATE
    ingress_burst: int = DEFAULT_INGRESS_BURST
    # Addresses and names destinations may reach though they are not public (THOTH_OUTBOUND_ALLOW):
    # CIDR ranges ("10.0.0.0/8", "127.0.0.1/32") and host names ("hooks.internal").
    outbound_allow: tuple[str, ...] = ()
    # The master key that seals secrets at rest (see thothbot/sealing.py); None: the key file
    # beside the database.
    secret_key: SecretStr | None = None
    # Deadlines for a request's head and body (seconds), and failed authentications allowed
    # per client address within a window (seconds) before it is answered 429.
    ingress_head_timeout: float = DEFAULT_INGRESS_HEAD_TIMEOUT
    ingress_body_timeout: float = DEFAULT_INGRESS_BODY_TIMEOUT
    ingress_auth_failures: int = DEFAULT_INGRESS_AUTH_FAILURES
    ingress_auth_window: float = DEFAULT_INGRESS_AUTH_WINDOW
    # Seconds a closed ticket's channel stays at least (the customer may rate in it).
    close_delay: float = DEFAULT_CLOSE_DELAY

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if level not in LOG_LEVELS:
            raise InvalidInput(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {level!r}.")
        log_format = env.get("LOG_FORMAT", "text").strip().lower() or "text"
        if log_format not in LOG_FORMATS:
            raise InvalidInput(f"LOG_FORMAT must be text or json, not {log_format!r}.")
        token = env.get("DISCORD_TOKEN", "").strip()
        base_url = env.get("THOTH_LLM_BASE_URL", "").strip() or None
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            raise InvalidInput(
                f"THOTH_LLM_BASE_URL must start with http:// or https://, not {base_url!r}."
            )
        api_key = env.get("THOTH_LLM_API_KEY", "").strip()
        secret_key = env.get(sealing.ENV, "").strip()
        if secret_key:
            sealing.parse_keys(secret_key)  # a malformed key is refused at start, in words
        return cls(
            db_path=env.get("THOTH_DB_PATH", "").strip() or DEFAULT_DB_PATH,
            discord_token=SecretStr(token) if token else None,
            log_level=level,
            log_format=log_format,
            guild_ids=_guild_ids(env.get("THOTH_GUILD_IDS", "")),
            discord_api_url=_url(env, "THOTH_DISCORD_API_URL", DEFAULT_DISCORD_API_URL, "http"),
            discord_gateway_url=_url(
                env, "THOTH_DISCORD_GATEWAY_URL", DEFAULT_DISCORD_GATEWAY_URL, "ws"
            ),
            llm_base_url=base_url,
            llm_api_key=SecretStr(api_key) if api_key else None,
            llm_model=env.get("THOTH_LLM_MODEL", "").strip() or None,
            outbound_allow=_outbound_allow(env.get("THOTH_OUTBOUND_ALLOW", "")),
            secret_key=SecretStr(secret_key) if secret_key else None,
            close_delay=_number(
                env, "THOTH_CLOSE_DELAY", DEFAULT_CLOSE_DELAY, float, low=0.0, high=86400.0
            ),
            **_ingress(env),
        )

    def configure_logging(self) -> None:
        from thothbot.logs import configure_json, quiet_reconnects  # noqa: PLC0415

        quiet_reconnects()
        if self.log_format == "json":
            configure_json(self.log_level)
            return
        logging.basicConfig(
            level=self.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        sealing.mask_logs()


def _guild_ids(raw: str) -> tuple[int, ...]:
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    bad = [part for part in ids if not (part.isdigit() and len(part) <= 20)]
    if bad:
        raise InvalidInput(
            f"THOTH_GUILD_IDS must be server ids separated by commas; {bad[0]!r} is not one."
        )
    return tuple(int(part) for part in ids)


def _url(env: Mapping[str, str], name: str, default: str, scheme: str) -> str:
    url = env.get(name, "").strip() or default
    if not url.startswith((f"{scheme}://", f"{scheme}s://")):
        raise InvalidInput(f"{name} must start with {scheme}:// or {scheme}s://, not {url!r}.")
    return url.rstrip("/") if scheme == "http" else url


def _outbound_allow(raw: str) -> tuple[str, ...]:
    allowed = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            allowed.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            if "/" in part or ":" in part or not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", part):
                raise InvalidInput(
                    "THOTH_OUTBOUND_ALLOW must be CIDR ranges (10.0.0.0/8), addresses or host"
                    f" names separated by commas; {part!r} is none of these."
                ) from None
            allowed.append(part.lower().rstrip("."))
    return tuple(allowed)


def _ingress(env: Mapping[str, str]) -> dict[str, Any]:
    host = env.get("THOTH_INGRESS_HOST", "").strip() or DEFAULT_INGRESS_HOST
    port = _number(env, "THOTH_INGRESS_PORT", DEFAULT_INGRESS_PORT, int, low=0, high=65535)
    rate = _number(env, "THOTH_INGRESS_RATE", DEFAULT_INGRESS_RATE, float, low=0.001, high=1e6)
    burst = _number(env, "THOTH_INGRESS_BURST", DEFAULT_INGRESS_BURST, int, low=1, high=1_000_000)
    head = _number(
        env, "THOTH_INGRESS_HEAD_TIMEOUT", DEFAULT_INGRESS_HEAD_TIMEOUT, float, low=0.1, high=3600.0
    )
    body = _number(
        env, "THOTH_INGRESS_BODY_TIMEOUT", DEFAULT_INGRESS_BODY_TIMEOUT, float, low=0.1, high=3600.0
    )
    failures = _number(
        env,
        "THOTH_INGRESS_AUTH_FAILURES",
        DEFAULT_INGRESS_AUTH_FAILURES,
        int,
        low=1,
        high=1_000_000,
    )
    window = _number(
        env, "THOTH_INGRESS_AUTH_WINDOW", DEFAULT_INGRESS_AUTH_WINDOW, float, low=1.0, high=86400.0
    )
    return {
        "ingress_host": host,
        "ingress_port": port,
        "ingress_rate": rate,
        "ingress_burst": burst,
        "ingress_head_timeout": head,
        "ingress_body_timeout": body,
        "ingress_auth_failures": failures,
        "ingress_auth_window": window,
    }


def _number(env: Mapping[str, str], name: str, default: N, kind: type[N], *, low: N, high: N) -> N:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:  # NaN fails the range check too
        what = "a whole number" if kind is int else "a number"
        raise InvalidInput(f"{name} must be {what} from {low} to {high}, not {raw!r}.")
    return value


def load_env_file() -> None:
    """Read ``.env`` from the current folder into the environment, as documented; what the
    environment already sets wins.

    python-dotenv's default looks beside the calling module and up instead, which for an
    installed package is site-packages and for a checkout the repository, whatever the folder.
    """
    try:
        load_dotenv(Path.cwd() / ".env", override=False)
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise InvalidInput(f"cannot read .env in the current folder: {reason or error}") from None
