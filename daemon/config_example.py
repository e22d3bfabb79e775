"""The commented example config file (``config/evidock.toml``), generated from the schema.

Every key is written with its default, bounds and description; a key whose field carries an
``example`` (``ui.language = 'zh'``: stations speak Chinese) is written with that instead.
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr

from daemon.config import Config


def render_example() -> str:
    """The commented example config file, generated from the schema (config/evidock.toml)."""
    out = [
        "# evidock configuration (TOML). Generated from the schema by `evidock config example`;",
        "# every key is shown with its default. Unknown keys are an error.",
        "# Pass it with --config FILE or $EVIDOCK_CONFIG; the service reads /etc/evidock/evidock.toml.",
    ]
    for name, field in Config.model_fields.items():
        if get_origin(field.annotation) is list:  # an array of tables: none by default, one shown commented out
            out += ["", f"# {field.description}", "# One block per model, e.g.:"] + _entry_example(name, get_args(field.annotation)[0])
            continue
        section: type[BaseModel] = field.annotation  # type: ignore[assignment]
        out += ["", f"# {field.description}", f"[{name}]"]
        out += _keys(name, section)
    return "\n".join(out) + "\n"


def _keys(name: str, section: type[BaseModel]) -> list[str]:
    """The keys of ``[name]``; a sub-table field (``[store.s3]``) after them, as its own table."""
    out: list[str] = []
    subs = {k: f for k, f in section.model_fields.items()
            if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)}
    for key, f in section.model_fields.items():
        if key in subs:
            continue
        bounds = _bounds(f)
        out.append(f"# {f.description}{bounds}")
        item = _table_list_item(f.annotation)
        if item is not None:  # [[section.key]] tables: one commented-out example entry
            out += [f"# [[{name}.{key}]]"] + [f"#   {k}: {g.description}" for k, g in item.model_fields.items()]
            for k, v in (f.json_schema_extra or {}).get("example_entries", []) if isinstance(f.json_schema_extra, dict) else []:
                out.append(f"#   {k} = {_toml_value(v)}" if k else f"# [[{name}.{key}]]")
            continue
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        default = extra.get("example", f.get_default(call_default_factory=True))
        if default is None:
            out.append(f"# {key} =   (unset by default)")
        else:
            out.append(f"{key} = {_toml_value(default)}")
    for key, f in subs.items():
        out += ["", f"# {f.description}", f"[{name}.{key}]"] + _keys(f"{name}.{key}", f.annotation)
    return out


def _entry_example(name: str, entry: type[BaseModel]) -> list[str]:
    out = [f"# [[{name}]]"]
    for key, f in entry.model_fields.items():
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        value = extra.get("example", None if f.is_required() else f.get_default(call_default_factory=True))
        shown = _toml_value(value) if value is not None else "…"
        note = "required" if f.is_required() else ("optional" if value is None else "default")
        out.append(f"# {key} = {shown}   # {note}: {f.description}{_bounds(f)}")
    return out


def _table_list_item(annotation: Any) -> type[BaseModel] | None:
    """The model of a ``list[Model]`` field (written as ``[[section.key]]`` tables), else None."""
    args = getattr(annotation, "__args__", None)
    if args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def _bounds(f: Any) -> str:
    parts = []
    for m in f.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            v = getattr(m, attr, None)
            if v is not None:
                parts.append(f"{sym} {v}")
    return f" ({', '.join(parts)})" if parts else ""


def _toml_value(v: Any) -> str:
    if isinstance(v, SecretStr):
        return _toml_value(v.get_secret_value())  # only defaults are rendered, never a loaded config
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return "'" + v + "'" if "'" not in v else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_value(str(k))} = {_toml_value(x)}" for k, x in v.items()) + " }" if v else "{}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML rendering for {v!r}")
