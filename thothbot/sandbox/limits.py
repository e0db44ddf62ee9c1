"""Discord's size limits on messages, embeds, components, modals and channels, as 400 errors."""

from __future__ import annotations

from collections.abc import Iterator

from .world import JSON, ApiError, form_error

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
EMBED_LIMITS = {"title": 256, "description": 4096}
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_AUTHOR_NAME = 256
MAX_ACTION_ROWS = 5
MAX_ROW_WIDTH = 5
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80
MAX_MODAL_TITLE = 45
MAX_MODAL_COMPONENTS = 5
MAX_TEXT_INPUT = 4000
MAX_LABEL = 45
MAX_CHANNEL_NAME = 100
MAX_TOPIC = 1024
COMPONENTS_V2 = 1 << 15


def _too_long(path: str, limit: int) -> ApiError:
    return form_error(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def check_message(body: JSON, files: list[tuple[str, bytes]], *, edit: bool = False) -> None:
    """Raise the 400 Discord answers for a message body over its limits."""
    content = body.get("content") or ""
    if len(content) > MAX_CONTENT:
        raise _too_long("content", MAX_CONTENT)
    embeds = body.get("embeds") or []
    if len(embeds) > MAX_EMBEDS:
        raise _too_long("embeds", MAX_EMBEDS)
    total = 0
    for i, embed in enumerate(embeds):
        total += _check_embed(f"embeds.{i}", embed)
    if total > MAX_EMBED_TOTAL:
        raise form_error(
            "embeds",
            "MAX_EMBED_SIZE_EXCEEDED",
            f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}",
        )
    components = body.get("components") or []
    if not int(body.get("flags") or 0) & COMPONENTS_V2 and len(components) > MAX_ACTION_ROWS:
        raise _too_long("components", MAX_ACTION_ROWS)
    _check_components("components", components)
    filled = content or embeds or components or files or body.get("sticker_ids") or body.get("poll")
    if not edit and not filled:
        raise ApiError(400, 50006, "Cannot send an empty message")


def _check_embed(path: str, embed: JSON) -> int:
    """Check one embed and return the characters it counts towards the 6000 total."""
    total = 0
    for key, limit in EMBED_LIMITS.items():
        text = embed.get(key) or ""
        if len(text) > limit:
            raise _too_long(f"{path}.{key}", limit)
        total += len(text)
    fields = embed.get("fields") or []
    if len(fields) > MAX_FIELDS:
        raise _too_long(f"{path}.fields", MAX_FIELDS)
    for j, item in enumerate(fields):
        name, value = str(item.get("name") or ""), str(item.get("value") or "")
        if len(name) > MAX_FIELD_NAME:
            raise _too_long(f"{path}.fields.{j}.name", MAX_FIELD_NAME)
        if len(value) > MAX_FIELD_VALUE:
            raise _too_long(f"{path}.fields.{j}.value", MAX_FIELD_VALUE)
        if not name or not value:
            raise form_error(
                f"{path}.fields.{j}.{'name' if not name else 'value'}",
                "BASE_TYPE_REQUIRED",
                "This field is required",
            )
        total += len(name) + len(value)
    footer = (embed.get("footer") or {}).get("text") or ""
    if len(footer) > MAX_FOOTER:
        raise _too_long(f"{path}.footer.text", MAX_FOOTER)
    author = (embed.get("author") or {}).get("name") or ""
    if len(author) > MAX_AUTHOR_NAME:
        raise _too_long(f"{path}.author.name", MAX_AUTHOR_NAME)
    return total + len(footer) + len(author)


def walk_components(components: list[JSON], path: str = "components") -> Iterator[tuple[str, JSON]]:
    """Every component, nested ones too, with its dotted path."""
    for i, component in enumerate(components):
        here = f"{path}.{i}"
        yield here, component
        yield from walk_components(component.get("components") or [], f"{here}.components")
        for key in ("component", "accessory"):
            if isinstance(component.get(key), dict):
                yield from walk_components([component[key]], f"{here}.{key}")


def _check_components(path: str, components: list[JSON]) -> None:
    for i, row in enumerate(components):
        if row.get("type") == 1 and len(row.get("components") or []) > MAX_ROW_WIDTH:
            raise _too_long(f"{path}.{i}.components", MAX_ROW_WIDTH)
    for here, component in walk_components(components, path):
        custom_id = component.get("custom_id")
        if custom_id is not None and len(str(custom_id)) > MAX_CUSTOM_ID:
            raise _too_long(f"{here}.custom_id", MAX_CUSTOM_ID)
        if component.get("type") == 2 and len(component.get("label") or "") > MAX_BUTTON_LABEL:
            raise _too_long(f"{here}.label", MAX_BUTTON_LABEL)


def check_modal(data: JSON) -> None:
    """Raise the 400 Discord answers for a modal over its limits."""
    if len(data.get("title") or "") > MAX_MODAL_TITLE:
        raise _too_long("data.title", MAX_MODAL_TITLE)
    if not data.get("custom_id"):
        raise form_error("data.custom_id", "BASE_TYPE_REQUIRED", "This field is required")
    components = data.get("components") or []
    if not 1 <= len(components) <= MAX_MODAL_COMPONENTS:
        raise form_error(
            "data.components",
            "BASE_TYPE_BAD_LENGTH",
            f"Must be between 1 and {MAX_MODAL_COMPONENTS} in length.",
        )
    for here, component in walk_components(components, "data.components"):
        custom_id = component.get("custom_id")
        if custom_id is not None and len(str(custom_id)) > MAX_CUSTOM_ID:
            raise _too_long(f"{here}.custom_id", MAX_CUSTOM_ID)
        if component.get("type") in (4, 18) and len(component.get("label") or "") > MAX_LABEL:
            raise _too_long(f"{here}.label", MAX_LABEL)
        if component.get("type") == 4:
            for key in ("max_length", "min_length"):
                if int(component.get(key) or 0) > MAX_TEXT_INPUT:
                    raise form_error(
                        f"{here}.{key}",
                        "NUMBER_TYPE_MAX",
                        f"int value should be <= {MAX_TEXT_INPUT}.",
                    )
            if len(component.get("value") or "") > MAX_TEXT_INPUT:
                raise _too_long(f"{here}.value", MAX_TEXT_INPUT)


def check_channel(body: JSON) -> None:
    """Raise the 400 for a channel name or topic Discord would refuse."""
    if "name" in body:
        name = body["name"] or ""
        if not 1 <= len(name) <= MAX_CHANNEL_NAME:
            raise form_error(
                "name",
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between 1 and {MAX_CHANNEL_NAME} in length.",
            )
    if len(body.get("topic") or "") > MAX_TOPIC:
        raise _too_long("topic", MAX_TOPIC)


def normalize_channel_name(name: str, type_: int) -> str:
    """Discord lowercases text channel names and turns spaces into dashes."""
    if type_ in (0, 5):
        return "-".join(name.lower().split())
    return name
