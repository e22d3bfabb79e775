"""What is wrong with a config file, for people: pydantic's validation errors as one message.

Each problem names its key (``offload.chunk_bytes: …``); an unknown key lists the valid keys of
its section; a secret's value is never shown. pydantic's own wording is English: in Chinese the
common kinds of error (out of bounds, wrong type, not one of the choices …) are said with the
catalog's words, anything else keeps pydantic's text. English is always pydantic's text as is.
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from daemon.i18n import N_, _, current_language

# pydantic's message templates by error type (their English is pydantic's own wording).
PYDANTIC_MESSAGES = {
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "greater_than": N_("Input should be greater than {gt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "less_than": N_("Input should be less than {lt}"),
    "int_type": N_("Input should be a valid integer"),
    "float_type": N_("Input should be a valid number"),
    "string_type": N_("Input should be a valid string"),
    "bool_type": N_("Input should be a valid boolean"),
    "dict_type": N_("Input should be a valid dictionary"),
    "list_type": N_("Input should be a valid list"),
    "literal_error": N_("Input should be {expected}"),
    "string_too_short": N_("String should have at least {min_length} characters"),
    "string_too_long": N_("String should have at most {max_length} characters"),
    "value_error": N_("Value error, {error}"),
}


def error_text(err: dict[str, Any]) -> str:
    """One pydantic error's message in the current language."""
    template = PYDANTIC_MESSAGES.get(err["type"])
    if current_language() == "en" or template is None:
        return str(err["msg"])
    try:
        return _(template).format(**{k: str(v) for k, v in (err.get("ctx") or {}).items()})
    except (KeyError, IndexError):
        return str(err["msg"])


def known_keys_hint(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """The valid keys of the section holding the key at ``loc``."""
    model: type[BaseModel] = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue  # an entry of an array of tables ([[recorders]], [[backup.targets]]): its model is the list's item
        field = model.model_fields.get(str(part))
        ann = field.annotation if field is not None else None
        if get_origin(ann) is list:
            ann = get_args(ann)[0]
        if not isinstance(ann, type) or not issubclass(ann, BaseModel):
            break
        model = ann
    section = ".".join(str(x) for x in loc[:-1]) or _("top level")
    return _("valid keys in [{section}]: {keys}").format(section=section, keys=", ".join(model.model_fields))


def describe_errors(e: ValidationError, root: type[BaseModel], source: str, secret_keys: frozenset[str]) -> str:
    """Every problem of a config that did not validate, each naming its key, as one message."""
    lines = []
    for err in e.errors():
        key = ".".join(str(x) for x in err["loc"])
        msg = error_text(err)
        if err["type"] == "extra_forbidden":
            lines.append(_("{key}: unknown key; {hint}").format(key=key, hint=known_keys_hint(root, err["loc"])))
        elif key in secret_keys:
            lines.append(_("{key}: {error} (value not shown: it is a secret)").format(key=key, error=msg))
        elif isinstance(err.get("input"), bool) and err["type"] in ("int_type", "float_type"):
            lines.append(_("{key}: {error} (got {value}: write a number, not true/false)").format(
                key=key, error=msg, value=str(err["input"]).lower()))
        elif isinstance(err.get("input"), (list, dict)):  # a whole section or array: its problem says what
            lines.append(_("{key}: {error}").format(key=key, error=msg))
        else:
            lines.append(_("{key}: {error} (got {value})").format(key=key, error=msg, value=repr(err.get("input"))))
    return _("config {source}: {problems}. Fix the key(s) named; `evidock config example` prints every valid key").format(
        source=source, problems="; ".join(lines))
