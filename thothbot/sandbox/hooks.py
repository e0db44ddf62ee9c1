"""Interaction callbacks and their webhooks: responses, follow-ups, @original edits."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .interactions import (
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE,
    MODAL,
    UPDATE_MESSAGE,
    Interaction,
)
from .limits import check_message, check_modal
from .routing import Call
from .world import EPHEMERAL, JSON, LOADING, ApiError, World, form_error, public_message

if TYPE_CHECKING:
    from .sandbox import Sandbox

# Follow-up flags Discord keeps: suppress embeds, ephemeral, suppress notifications, components v2.
_FOLLOWUP_FLAGS = (1 << 2) | EPHEMERAL | (1 << 12) | (1 << 15)


class InteractionEndpoints:
    """POST /interactions/{id}/{token}/callback and /webhooks/{app}/{token}[/messages/{id}]."""

    sb: Sandbox
    world: World

    def _interaction(self, call: Call) -> Interaction:
        if "app" in call.params and call.params["app"] != self.world.bot_id:
            raise ApiError(404, 10015, "Unknown Webhook")
        inter = self.sb.interaction_by_token(call.params["token"])
        if inter is None or ("id" in call.params and inter.id != call.params["id"]):
            raise ApiError(404, 10062, "Unknown interaction")
        return inter

    def callback(self, call: Call) -> JSON:
        inter = self._interaction(call)
        if inter.callback is not None:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - inter.created_at > self.sb.interaction_timeout:
            raise ApiError(404, 10062, "Unknown interaction")  # the 3 s window has passed
        body = call.body
        type_, data = int(body.get("type") or 0), body.get("data") or {}
        message: JSON | None = None
        if type_ == CHANNEL_MESSAGE:
            check_message(data, call.files)
            message = inter.original = self.sb.interaction_message(inter, data, call.files)
        elif type_ == DEFERRED_CHANNEL_MESSAGE:
            flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
            message = inter.original = self.sb.interaction_message(inter, {"flags": flags}, [])
        elif type_ in (DEFERRED_UPDATE, UPDATE_MESSAGE):
            if inter.target is None:
                raise form_error(
                    "type", "INTERACTION_RESPONSE_TYPE_INVALID", "Only for component interactions"
                )
            if type_ == UPDATE_MESSAGE:
                check_message(data, call.files, edit=True)
                self.sb.edit_message(inter.target, data, call.files)
                message = inter.original = inter.target
        elif type_ == MODAL and inter.type in (2, 3):
            check_modal(data)
        elif not (type_ == AUTOCOMPLETE_RESULT and inter.type == 4):
            raise form_error(
                "type", "INTERACTION_RESPONSE_TYPE_INVALID", f"Invalid response type {type_}"
            )
        inter.answered(type_, data)
        answer: JSON = {"id": inter.id, "type": inter.type,
                        "response_message_loading": type_ == DEFERRED_CHANNEL_MESSAGE,
                        "response_message_ephemeral": inter.ephemeral}  # fmt: skip
        resource: JSON = {"type": type_}
        if message is not None:
            answer["response_message_id"] = message["id"]
            resource["message"] = public_message(message)
        return {"interaction": answer, "resource": resource}

    def followup(self, call: Call) -> JSON | None:
        inter = self._interaction(call)
        if inter.callback is None:
            raise ApiError(404, 10015, "Unknown Webhook")
        check_message(call.body, call.files)
        if inter.loading and inter.original is not None:
            # Right after a deferral Discord turns the first follow-up into the edit of the
            # "thinking" message, keeping the deferral's ephemeral flag.
            message = inter.original
            self.sb.edit_message(message, {k: v for k, v in call.body.items() if k != "flags"},
                                 call.files)  # fmt: skip
        else:
            body = {**call.body, "flags": int(call.body.get("flags") or 0) & _FOLLOWUP_FLAGS}
            message = self.sb.interaction_message(inter, body, call.files)
            inter.followups.append(message)
        inter.final = True
        if call.query.get("wait") in ("1", "true", "True"):
            return public_message(message)
        return None

    def _hook_message(self, inter: Interaction, mid: str, *, editing: bool) -> JSON:
        if inter.callback is None:
            raise ApiError(404, 10015, "Unknown Webhook")
        if mid == "@original":
            if inter.original is None and inter.target is not None and editing:
                inter.original = inter.target  # a deferred update edits the clicked message
            if inter.original is None:
                raise ApiError(404, 10008, "Unknown Message")
            return inter.original
        for message in [inter.original, *inter.followups]:
            if message is not None and message["id"] == mid:
                return message
        raise ApiError(404, 10008, "Unknown Message")

    def hook_get(self, call: Call) -> JSON:
        inter = self._interaction(call)
        return public_message(self._hook_message(inter, call.params["mid"], editing=False))

    def hook_edit(self, call: Call) -> JSON:
        inter = self._interaction(call)
        message = self._hook_message(inter, call.params["mid"], editing=True)
        check_message(call.body, call.files, edit=True)
        self.sb.edit_message(message, call.body, call.files)
        inter.final = True
        return public_message(message)

    def hook_del(self, call: Call) -> None:
        inter = self._interaction(call)
        message = self._hook_message(inter, call.params["mid"], editing=False)
        self.sb.delete_message(message)
        if message is inter.original:
            inter.original = None
        elif message in inter.followups:
            inter.followups.remove(message)
