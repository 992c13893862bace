"""Loading a :class:`~lmrl.pipelines.config.RunConfig` from YAML with ``--set`` overrides.

The schema lives in :mod:`lmrl.pipelines.config` (so pipelines can use it
without importing the platform layer); this module turns a YAML file plus
``--set a.b=c`` overrides into a validated ``RunConfig``. Every failure raises
:class:`~lmrl.errors.ConfigError` with a one-line message that names the key,
the value, where the value came from (the file or the ``--set``), and the fix.

Example:
    >>> cfg = load_config(None, ["algorithm.lr=0.01", "run.stop.iterations=null"])
    >>> cfg.algorithm.lr, cfg.run.stop.iterations
    (0.01, None)
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from lmrl.errors import ConfigError, did_you_mean
from lmrl.pipelines.config import RunConfig
from lmrl.pipelines.run_dir import config_to_yaml

__all__ = [
    "apply_overrides",
    "dump_config",
    "load_config",
    "load_config_as",
    "parse_override",
    "save_config",
    "validate_config",
]

_SET_EXAMPLE = "e.g. --set algorithm.lr=0.01"
#: The schema being loaded: RunConfig, or another sectioned model (see load_config_as).
_SCHEMA: ContextVar[type[BaseModel]] = ContextVar("schema", default=RunConfig)


# --- public API ---------------------------------------------------------------------------


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    """Loads a run config from a YAML file, then applies ``--set`` overrides.

    Args:
        path: A YAML file whose top level maps section names (``env``,
            ``policy``, ``algorithm``, ``resources``, ``run``) to their keys;
            ``None`` starts from the defaults.
        overrides: ``"a.b=c"`` strings applied in order after the file. The
            value is parsed as YAML, so ``algorithm.lr=0.01`` is a float and
            ``run.stop.iterations=null`` is ``None``; text that is not valid
            YAML is taken as a plain string.

    Returns:
        The validated config.

    Raises:
        ConfigError: The file is missing or not valid YAML, an override is
            malformed, or a key or value is invalid. The message is one line.

    Example:
        >>> load_config(None, ["env.id=lmrl/Maze-v0"]).env.id
        'lmrl/Maze-v0'
    """
    source = str(path) if path is not None else None
    data = _read_yaml(Path(path)) if path is not None else {}
    file_data = _deep_copy(data)
    origins: dict[tuple[str, ...], str] = {}
    for text in overrides:
        keys, value = parse_override(text)
        _set_in(data, keys, _as_text_if_wanted(keys, value, text), text)
        origins[keys] = f"--set {text}"
    return _validate(data, source, origins, file_data)


def validate_config(
    data: dict[str, Any],
    source: str | None = None,
    origins: dict[tuple[str, ...], str] | None = None,
) -> RunConfig:
    """Validates a plain dict as a ``RunConfig``, turning pydantic errors into one-line ConfigErrors.

    Args:
        data: The nested config dict (what the YAML file holds).
        source: Where ``data`` came from, named in messages (a file path).
        origins: For keys set by overrides, the dotted key path mapped to the
            text naming the override (``"--set algorithm.lr=fast"``).

    Returns:
        The validated config.

    Raises:
        ConfigError: A key is unknown or a value is invalid.
    """
    return _validate(_deep_copy(data), source, origins or {}, data)


def _validate(
    data: dict[str, Any],
    source: str | None,
    origins: dict[tuple[str, ...], str],
    file_data: dict[str, Any],
) -> RunConfig:
    schema = _SCHEMA.get()
    data = _fill_empty_sections(data, schema)
    flag = _first_bool_for_number(data, schema)
    if flag is not None:  # pydantic's lax mode would read true as 1
        raise ConfigError(_explain(flag, file_data, source, origins))
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        message = _explain(errors[0], file_data, source, origins)
        if len(errors) > 1:
            more = len(errors) - 1
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigError(message) from None


def load_config_as(
    schema: type[BaseModel], path: str | Path | None, overrides: Sequence[str] = ()
) -> Any:
    """:func:`load_config` for another sectioned schema (the same one-line errors).

    Args:
        schema: A pydantic model whose fields are sections (e.g. ``PretrainConfig``).
        path: The YAML file, or ``None`` for the defaults.
        overrides: ``"a.b=c"`` strings applied in order after the file.

    Returns:
        The validated ``schema`` instance.

    Raises:
        ConfigError: As :func:`load_config`.
    """
    token = _SCHEMA.set(schema)
    try:
        return load_config(path, overrides)
    finally:
        _SCHEMA.reset(token)


def parse_override(text: str) -> tuple[tuple[str, ...], Any]:
    """Splits ``"a.b=c"`` into ``(("a", "b"), value)``, the value parsed as YAML.

    Args:
        text: One ``--set`` argument.

    Returns:
        The key path and the parsed value.

    Raises:
        ConfigError: ``text`` has no ``=`` or an empty key part.

    Example:
        >>> parse_override("algorithm.lr=0.01")
        (('algorithm', 'lr'), 0.01)
    """
    key, sep, raw = text.partition("=")
    keys = tuple(part.strip() for part in key.split("."))
    if not sep or not all(keys):
        raise ConfigError(f"--set expects key=value, got {text!r}; {_SET_EXAMPLE}")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw  # not YAML (e.g. "a: b"): the user meant the text itself
    return keys, value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Applies ``--set`` overrides to a nested config dict in place and returns it.

    Args:
        data: The nested config dict.
        overrides: ``"a.b=c"`` strings, applied in order.

    Returns:
        ``data``, changed.

    Raises:
        ConfigError: An override is malformed or descends into a non-mapping value.
    """
    for text in overrides:
        keys, value = parse_override(text)
        _set_in(data, keys, value, text)
    return data


def dump_config(cfg: RunConfig) -> str:
    """Renders a config as YAML that :func:`load_config` reads back to an equal config.

    Args:
        cfg: The config.

    Returns:
        YAML text, sections in schema order, ``lambda`` under its YAML name.

    Example:
        >>> "lambda: 0.95" in dump_config(RunConfig())
        True
    """
    header = "# lmrl run config: `lmrl train config.yaml [--set key=value ...]`\n"
    return header + config_to_yaml(cfg)


def save_config(cfg: RunConfig, path: str | Path) -> Path:
    """Writes :func:`dump_config` output to ``path`` (parents created) and returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_config(cfg), encoding="utf-8")
    return path


# --- reading and overriding ---------------------------------------------------------------


def _read_yaml(path: Path) -> dict[str, Any]:
    name = str(path)
    if not path.exists():
        if _SCHEMA.get() is RunConfig:
            hint = "pass the path of a YAML run config (`lmrl config > config.yaml` writes the defaults)"
        else:
            hint = "pass the path of a YAML config (examples/train/ has one per task; docs/training.md lists every key)"
        raise ConfigError(f"config file not found: {name}; {hint}")
    if path.is_dir():
        raise ConfigError(
            f"config path {name} is a directory; pass a YAML file such as {name}/config.yaml"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: not a UTF-8 text file; pass a YAML run config") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {name}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = _one_line(exc.problem or exc.context or "invalid YAML")
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{name}: YAML syntax error{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: YAML syntax error: {_one_line(str(exc))}") from None
    if data is None:  # an empty file (or only comments) means the defaults
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{name}: the top level must be a mapping of sections ({_keys_text(_SCHEMA.get())}), "
            f"got {_show(data)}"
        )
    return data


def _set_in(data: dict[str, Any], keys: tuple[str, ...], value: Any, text: str) -> None:
    node = data
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        elif not isinstance(child, dict):
            prefix = ".".join(keys[: depth + 1])
            raise ConfigError(
                f"cannot apply --set {text}: `{prefix}` is {_show(child)}, not a section; "
                f"set `{prefix}=...` instead"
            )
        node = child
    node[keys[-1]] = value


def _first_bool_for_number(
    data: dict[str, Any], model: type[BaseModel], loc: tuple[str, ...] = ()
) -> dict[str, Any] | None:
    """A pydantic-style error for the first ``true``/``false`` given to a numeric field."""
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in data and name not in data:
            continue
        value = data[key] if key in data else data[name]
        sub = _model_class(field.annotation)
        if sub is not None and isinstance(value, dict):
            found = _first_bool_for_number(value, sub, (*loc, key))
            if found is not None:
                return found
        elif isinstance(value, bool):
            kinds = {
                typing.get_origin(field.annotation),
                field.annotation,
                *typing.get_args(field.annotation),
            }
            if bool not in kinds and (int in kinds or float in kinds):
                kind = "int_type" if float not in kinds else "float_type"
                return {"type": kind, "loc": (*loc, key), "input": value}
    return None


def _as_text_if_wanted(keys: tuple[str, ...], value: Any, text: str) -> Any:
    """``--set run.name=2024`` means the text 2024: a scalar for a text field stays text."""
    if isinstance(value, (str, dict, list)) or value is None:
        return value
    section = _section_model(keys[:-1])
    field = _field(section, keys[-1]) if section is not None else None
    if field is not None and field.annotation in (str, str | None):
        return text.partition("=")[2].strip()
    return value


def _fill_empty_sections(data: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Reads ``section:`` with nothing under it (YAML null) as an empty section."""
    for name, field in model.model_fields.items():
        key = field.alias or name
        sub = _model_class(field.annotation)
        if sub is None or key not in data:
            continue
        if data[key] is None:
            data[key] = {}
        elif isinstance(data[key], dict):
            data[key] = _fill_empty_sections(dict(data[key]), sub)
    return data


# --- explaining validation errors ---------------------------------------------------------

_TYPE_NAMES = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "finite_number": "a finite number",
}

_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}


def _explain(
    error: dict[str, Any],
    file_data: dict[str, Any],
    source: str | None,
    origins: dict[tuple[str, ...], str],
) -> str:
    loc = tuple(str(part) for part in error["loc"] if part != "[key]")
    dotted = ".".join(loc)
    kind = error["type"]
    value = error.get("input")
    where = _where(loc, file_data, source, origins)

    if kind == "extra_forbidden":
        hint = _suggest(loc)
        return (
            f"unknown key `{dotted}` in {where}.{hint}"
            if hint
            else f"unknown key `{dotted}` in {where}"
        )
    if kind in _TYPE_NAMES:
        message = f"`{dotted}` must be {_TYPE_NAMES[kind]}, got {_show(value)} in {where}"
        if kind == "string_type" and isinstance(value, (int, float, bool)):
            message += f"; quote it: '{value}'"
        return message
    if kind in _BOUNDS:
        symbol, ctx_key = _BOUNDS[kind]
        bound = _num(error.get("ctx", {}).get(ctx_key))
        return f"`{dotted}` must be {symbol} {bound}, got {value!r} in {where}"
    if kind == "literal_error":
        choices = [str(c) for c in _literal_choices(loc)]
        allowed = ", ".join(repr(c) for c in choices) or error.get("ctx", {}).get("expected", "")
        hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
        message = f"`{dotted}` must be one of {allowed}, got {_show(value)} in {where}"
        return f"{message}.{hint}" if hint else message
    if kind in ("value_error", "assertion_error"):
        cause = error.get("ctx", {}).get("error")
        message = str(cause) if cause is not None else str(error["msg"])
        return f"{_one_line(message)} (in {where})"
    # Anything else: pydantic's own words, with the key, the value and the source.
    return f"`{dotted}` is invalid: {_one_line(str(error['msg']))}, got {_show(value)} in {where}"


def _where(
    loc: tuple[str, ...],
    file_data: dict[str, Any],
    source: str | None,
    origins: dict[tuple[str, ...], str],
) -> str:
    """Names where the value at ``loc`` came from: the file, a ``--set``, or both."""
    covering = [keys for keys in origins if loc[: len(keys)] == keys]
    if covering:  # the longest override that contains loc replaced what the file had
        return origins[max(covering, key=len)]
    places = [origins[keys] for keys in origins if keys[: len(loc)] == loc]
    if source is not None and _has_path(file_data, loc):
        places.insert(0, source)
    if not places:
        return source or "the config"
    return " and ".join(places)


def _deep_copy(value: Any) -> Any:
    return {k: _deep_copy(v) for k, v in value.items()} if isinstance(value, dict) else value


def _has_path(data: Any, loc: tuple[str, ...]) -> bool:
    for key in loc:
        if not isinstance(data, dict) or key not in data:
            return False
        data = data[key]
    return True


def _suggest(loc: tuple[str, ...]) -> str:
    """Did-you-mean over the valid keys of the section that holds ``loc``."""
    section = _section_model(loc[:-1])
    if section is None:
        return ""
    prefix = "".join(f"{part}." for part in loc[:-1])
    keys = _field_keys(section)
    close = (
        difflib.get_close_matches(loc[-1], keys, n=1, cutoff=0.6)
        or [key for key in keys if len(loc[-1]) >= 3 and key.startswith(loc[-1])][:1]
    )
    if close:  # compare leaf names: full paths share the section prefix and all look alike
        return f" Did you mean `{prefix}{close[0]}`?"
    elsewhere = [path for path in _all_paths(_SCHEMA.get()) if path.rsplit(".", 1)[-1] == loc[-1]]
    if elsewhere:
        return " Did you mean " + " or ".join(f"`{p}`" for p in elsewhere) + "?"
    where = f"in `{'.'.join(loc[:-1])}`" if loc[:-1] else "at the top level"
    return f" Valid keys {where}: {', '.join(keys)}."


def _section_model(loc: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = _SCHEMA.get()
    for key in loc:
        field = _field(model, key) if model is not None else None
        model = _model_class(field.annotation) if field is not None else None
    return model


def _field(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _literal_choices(loc: tuple[str, ...]) -> tuple[Any, ...]:
    section = _section_model(loc[:-1])
    field = _field(section, loc[-1]) if section is not None else None
    if field is None:
        return ()
    return typing.get_args(field.annotation)


def _model_class(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):  # Optional[Section]
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _field_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _keys_text(model: type[BaseModel]) -> str:
    return ", ".join(_field_keys(model))


def _all_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        paths.append(key)
        sub = _model_class(field.annotation)
        if sub is not None:
            paths.extend(_all_paths(sub, key + "."))
    return paths


def _show(value: Any) -> str:
    """``'fast' (str)``: the value and its type, short enough for one line."""
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{_one_line(text)} ({type(value).__name__})"


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
