"""Reading what the runtime hands an action: message text, room, and structured parameters.

The runtime's objects are protobuf messages; the reference's callers passed plain objects or
dicts. Everything here reads both, and never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message


def _field(obj: Any, *names: str) -> Any:
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj:
                return obj[name]
            continue
        if isinstance(obj, Message) and (
            obj.DESCRIPTOR.fields_by_name.get(name) is None or not _is_set(obj, name)
        ):
            continue
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _is_set(message: Message, name: str) -> bool:
    try:
        return bool(message.HasField(name))
    except ValueError:  # a repeated field, or a scalar without presence: set when non-empty
        return bool(getattr(message, name))


def message_text(message: Any) -> str:
    """The text of a message (``message.content.text``), "" when there is none."""
    text = _field(_field(message, "content"), "text")
    return text if isinstance(text, str) else ""


def message_room(message: Any) -> str | None:
    """The room a message came from (``room_id`` or the reference's ``roomId``)."""
    room = _field(message, "room_id", "roomId")
    return str(room) if room else None


def plain(value: Any) -> Any:
    """Protobuf values (Struct, ListValue, Value, other messages) as plain Python values."""
    if isinstance(value, Message):
        try:
            converted = MessageToDict(value)
        except Exception:
            return None
        if value.DESCRIPTOR.full_name == "google.protobuf.Value" and converted == {}:
            return None  # the empty Value an unset optional parameter arrives as
        return converted
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def action_params(options: Any, responses: Any, action_name: str) -> dict[str, Any]:
    """Structured parameters for ``action_name``: real values in ``options`` (the reference's
    dict, the runtime's ``_Opts`` or a ``HandlerOptions``), then what the model put in the
    response's ``content.data["params"][ACTION]``; a later source only fills gaps."""
    found: dict[str, Any] = {}
    if isinstance(options, Mapping):
        given = plain(options.get("parameters", options))
    else:
        given = plain(_field(options, "parameters"))
    if isinstance(given, Mapping) and set(given) == {"values"}:
        given = given["values"]  # an ActionParameters message
    if isinstance(given, Mapping):
        found.update({str(k): v for k, v in given.items() if v is not None and v != ""})
    for response in responses if isinstance(responses, list | tuple) else ():
        data = plain(_field(_field(response, "content"), "data"))
        by_action = data.get("params") if isinstance(data, Mapping) else None
        if not isinstance(by_action, Mapping):
            continue
        entry = by_action.get(action_name) or by_action.get(action_name.lower())
        if isinstance(entry, list):
            entry = entry[0] if entry else None
        if isinstance(entry, Mapping):
            for key, value in entry.items():
                found.setdefault(str(key), value)
        break
    return found
