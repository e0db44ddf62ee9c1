"""Configuration from an injectable mapping (the environment after ``.env``); no work at import."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from thothbot.core.errors import InvalidInput

DEFAULT_DB_PATH = "./data/thothbot.db"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True, slots=True)
class Config:
    db_path: str = DEFAULT_DB_PATH
    discord_token: SecretStr | None = None
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if level not in LOG_LEVELS:
            raise InvalidInput(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {level!r}.")
        token = env.get("DISCORD_TOKEN", "").strip()
        return cls(
            db_path=env.get("THOTH_DB_PATH", "").strip() or DEFAULT_DB_PATH,
            discord_token=SecretStr(token) if token else None,
            log_level=level,
        )

    def configure_logging(self) -> None:
        logging.basicConfig(
            level=self.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
