"""Secrets in a server's settings: where they are, how they are shown, and how a masked value
pasted back keeps the stored secret.

A settings document holds three kinds of secret: the ``ops_webhook`` URL and each destination's
``url`` (a Discord webhook URL carries its token; an http URL may carry one too) and each
destination's ``secret`` (the Standard Webhooks signing secret). The shell seals exactly these
at rest (``thothbot/sealing.py``), and every export shows them masked: the end of the value is
replaced by ``…`` and its last four characters, e.g. ``whsec_…Lw8=`` or
``https://discord.com/api/webhooks/123/…x9Qa``. ``…`` never occurs in a real secret (not
base64) and is what marks a value as masked, so pasting an export back keeps what is stored,
and pasting a new value replaces it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from thothbot.core.errors import SettingsInvalid

MASK = "…"  # U+2026: not in any base64 alphabet nor a URL anyone types
SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)
_SHOWN = 4  # characters shown at the end of a masked value
_SHORTEST_SHOWN = 16  # shorter secret parts show no characters at all

Path = tuple[str | int, ...]


def secret_fields(document: Mapping[str, Any]) -> Iterator[tuple[Path, str]]:
    """Each secret string in a settings document, with its path, in document order."""
    ops_webhook = document.get("ops_webhook")
    if isinstance(ops_webhook, str):
        yield ("ops_webhook",), ops_webhook
    destinations = document.get("destinations")
    if not isinstance(destinations, list):
        return
    for index, destination in enumerate(destinations):
        if not isinstance(destination, Mapping):
            continue
        for key in ("url", "secret"):
            value = destination.get(key)
            if isinstance(value, str):
                yield ("destinations", index, key), value


def map_secrets(document: Mapping[str, Any], change: Callable[[Path, str], str]) -> dict[str, Any]:
    """A copy of the document with each secret replaced by ``change(path, value)``."""
    copy: dict[str, Any] = dict(document)
    if isinstance(copy.get("destinations"), list):
        copy["destinations"] = [
            dict(d) if isinstance(d, Mapping) else d for d in copy["destinations"]
        ]
    for path, value in list(secret_fields(document)):
        parent: Any = copy
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = change(path, value)
    return copy


def mask(value: str) -> str:
    """How a secret is shown: what identifies it (the host and the path up to the last
    segment of a URL, the ``whsec_`` prefix), then ``…`` and the last four characters."""
    if is_masked(value):
        return value
    if value.startswith(("http://", "https://")):
        scheme, _, rest = value.partition("://")
        host, _, path = rest.partition("/")
        if "@" in host:  # user:password@host
            host = MASK + "@" + host.rpartition("@")[2]
        head, _, last = path.rpartition("/")
        return f"{scheme}://{host}/{head + '/' if head else ''}{MASK}{_tail(last)}"
    prefix = SECRET_PREFIX if value.startswith(SECRET_PREFIX) else ""
    return prefix + MASK + _tail(value.removeprefix(prefix))


def _tail(secret: str) -> str:
    return secret[-_SHOWN:] if len(secret) >= _SHORTEST_SHOWN else ""


def is_masked(value: str) -> bool:
    return MASK in value


def masked_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as exports and text boxes show them: every secret masked."""
    return map_secrets(document, lambda _path, value: mask(value))


def keep_masked(document: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """The pasted document with each masked value replaced by the stored secret it masks.

    A masked value matches the stored secret at the same place, else the one stored secret
    anywhere that masks the same (destinations may have been reordered). A masked value that
    matches none cannot be saved: the secret it stood for is not known here.
    """
    by_path = dict(secret_fields(stored))
    problems: list[tuple[str, str]] = []

    def restore(path: Path, value: str) -> str:
        if not is_masked(value):
            return value
        same_place = by_path.get(path)
        if same_place is not None and mask(same_place) == value:
            return same_place
        elsewhere = {secret for secret in by_path.values() if mask(secret) == value}
        if len(elsewhere) == 1:
            return elsewhere.pop()
        problems.append(
            (
                _dotted(path),
                "is a masked value (with …) that matches no secret stored for this server;"
                " paste the whole secret or URL.",
            )
        )
        return value

    restored = map_secrets(document, restore)
    if problems:
        raise SettingsInvalid(problems)
    return restored


def _dotted(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def fingerprint(kind: str, url: str) -> str:
    """What an outbox row keeps of a destination's URL (see ``destinations.OutboxRef``).

    The fingerprint is unkeyed on purpose: it must outlive a change of master key while a
    delivery waits, and it reveals nothing of a URL whose token is random.
    """
    return hashlib.sha256(f"{kind}\0{url}".encode()).hexdigest()[:16]


def reference(destination: Mapping[str, Any]) -> dict[str, str]:
    """The outbox reference of a destination in its JSON form: what rows written by older
    versions (which copied the destination whole) are rewritten to."""
    kind = str(destination["kind"])
    if "url" not in destination:
        return {"kind": kind}
    return {"kind": kind, "ref": fingerprint(kind, str(destination["url"]))}
