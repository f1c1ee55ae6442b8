"""Configuration without Hydra: frozen dataclasses, a TOML file and ``key=value`` overrides.

A command declares its options as a frozen dataclass with defaults in code (nested
dataclasses for sections). The user may give a TOML file and any number of overrides such as
``epochs=5`` or ``optim.lr=3e-4``; values are coerced to the declared field types, unknown
keys and wrong types are errors that list what is valid, and the resolved configuration is
written as JSON beside every output (:func:`write_config`).

Example
-------
>>> from dataclasses import dataclass, field
>>> @dataclass(frozen=True)
... class Optim:
...     lr: float = 1e-3
>>> @dataclass(frozen=True)
... class Train:
...     epochs: int = 10
...     optim: Optim = field(default_factory=Optim)
>>> cfg = load_config(Train, overrides=["epochs=3", "optim.lr=3e-4"])
>>> cfg.epochs, cfg.optim.lr
(3, 0.0003)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

__all__ = [
    "ConfigError",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "parse_overrides",
    "read_toml",
    "valid_keys",
    "write_config",
]

C = TypeVar("C")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class ConfigError(ValueError):
    """A configuration value, key or file is invalid. The message says what is valid."""


def _require_dataclass_type(cls: Any) -> None:
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"expected a dataclass type, got {cls!r}")


def valid_keys(cls: type, prefix: str = "") -> list[str]:
    """All dotted keys of a configuration dataclass, sections expanded."""
    _require_dataclass_type(cls)
    hints = get_type_hints(cls)
    keys: list[str] = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            keys.extend(valid_keys(hint, prefix=f"{prefix}{f.name}."))
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _type_name(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(hint))
    if origin in (tuple, list):
        args = [a for a in get_args(hint) if a is not Ellipsis]
        inner = _type_name(args[0]) if args else "any"
        return f"list of {inner}"
    if hint is type(None):
        return "none"
    return getattr(hint, "__name__", str(hint))


def _parse_literal(text: str) -> Any:
    """Parse an override value written as a TOML literal; fall back to the raw string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Coerce ``value`` (from TOML or a command-line string) to the type ``hint``."""
    origin = get_origin(hint)
    from_cli = isinstance(value, str)

    def fail(extra: str = "") -> ConfigError:
        return ConfigError(
            f"{key}: expected {_type_name(hint)}, got {value!r}{(' (' + extra + ')') if extra else ''}"
        )

    if hint is Any:
        return _parse_literal(value) if from_cli else value
    if origin in (typing.Union, types.UnionType):
        args = get_args(hint)
        if type(None) in args and (
            value is None or (from_cli and value.lower() in {"none", "null", ""})
        ):
            return None
        errors = []
        # Try str last so that "3" for `int | str` becomes 3.
        for arg in sorted((a for a in args if a is not type(None)), key=lambda a: a is str):
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise fail()
    if origin is Literal:
        choices = get_args(hint)
        for choice in choices:
            if value == choice or (from_cli and str(choice) == value):
                return choice
        raise ConfigError(
            f"{key}: expected one of {', '.join(repr(c) for c in choices)}, got {value!r}"
        )
    if origin in (tuple, list):
        args = [a for a in get_args(hint) if a is not Ellipsis]
        item_hint = args[0] if args else Any
        if from_cli:
            parsed = _parse_literal(value)
            # Allow the comma shorthand `labels=sbp,dbp` as well as TOML `["sbp", "dbp"]`.
            items = parsed if isinstance(parsed, list) else [v for v in value.split(",") if v != ""]
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            raise fail()
        coerced = [_coerce(v, item_hint, f"{key}[{i}]") for i, v in enumerate(items)]
        return tuple(coerced) if origin is tuple else coerced
    if hint is bool:
        if isinstance(value, bool):
            return value
        if from_cli and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise fail("use true or false")
    if hint is int:
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if from_cli:
            try:
                return int(value.strip().replace("_", ""))
            except ValueError:
                try:
                    as_float = float(value)
                except ValueError:
                    raise fail() from None
                if as_float.is_integer():
                    return int(as_float)
        raise fail()
    if hint is float:
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, int | float):
            return float(value)
        if from_cli:
            try:
                out = float(value)
            except ValueError:
                raise fail() from None
            return out
        raise fail()
    if hint is str:
        if isinstance(value, str):
            return value
        raise fail()
    if hint is Path:
        if isinstance(value, str | os.PathLike):
            return Path(value)
        raise fail()
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if isinstance(value, Mapping):
            return config_from_dict(hint, value, _prefix=f"{key}.")
        raise fail("a section (table) is expected here")
    # Unknown annotation: accept as-is rather than guess.
    return value


def config_from_dict(cls: type[C], data: Mapping[str, Any], *, _prefix: str = "") -> C:
    """Build a configuration dataclass from a nested mapping (e.g. a parsed TOML file).

    Missing keys keep their defaults; unknown keys raise :class:`ConfigError` listing the valid
    keys.
    """
    _require_dataclass_type(cls)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{_prefix or 'config'}: expected a table, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown configuration key(s) {', '.join(_prefix + k for k in unknown)}; "
            f"valid keys: {', '.join(valid_keys(cls, _prefix))}"
        )
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _coerce(data[f.name], hints[f.name], _prefix + f.name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # __post_init__ validation
        raise ConfigError(f"{_prefix or 'config'}: {exc}") from exc


def parse_overrides(overrides: Iterable[str]) -> dict[str, str]:
    """Split ``key=value`` strings into a flat dict of dotted keys to raw strings."""
    parsed: dict[str, str] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        parsed[key] = value.strip()
    return parsed


def _nested_set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def apply_overrides(config: C, overrides: Iterable[str] | Mapping[str, Any]) -> C:
    """Return a copy of ``config`` with dotted ``key=value`` overrides applied and validated."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"expected a dataclass instance, got {config!r}")
    flat = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
    if not flat:
        return config
    keys = set(valid_keys(type(config)))
    sections = {k.rsplit(".", 1)[0] for k in keys if "." in k}
    for key in flat:
        if key not in keys:
            hint = " (a section: set one of its keys)" if key in sections else ""
            raise ConfigError(
                f"unknown configuration key {key!r}{hint}; valid keys: {', '.join(sorted(keys))}"
            )
    tree = config_to_dict(config, json_safe=False)
    for key, value in flat.items():
        _nested_set(tree, key, value)
    return config_from_dict(type(config), tree)


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is a :class:`ConfigError` naming it."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def load_config(
    cls: type[C],
    path: str | os.PathLike | None = None,
    overrides: Iterable[str] | Mapping[str, Any] = (),
    *,
    section: str | None = None,
) -> C:
    """Defaults in code, then a TOML file, then command-line overrides.

    Parameters
    ----------
    cls : dataclass type
        The configuration schema.
    path : path-like, optional
        A TOML file. With ``section``, only that table of the file is used (so one file can
        hold the settings of several commands, e.g. ``[train]`` and ``[screen]``).
    overrides : iterable of str or mapping
        ``key=value`` strings, dotted keys for nested sections.
    """
    config = cls()
    if path is not None:
        path = Path(path)
        data = read_toml(path)
        if section is not None:
            if section not in data:
                raise ConfigError(
                    f"{path}: no [{section}] table (tables: {', '.join(data) or 'none'})"
                )
            data = data[section]
        try:
            config = config_from_dict(cls, data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return apply_overrides(config, overrides)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def config_to_dict(config: Any, *, json_safe: bool = True) -> dict[str, Any]:
    """A nested plain dict of a configuration dataclass (paths as strings when ``json_safe``)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"expected a dataclass instance, got {config!r}")
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out[f.name] = config_to_dict(value, json_safe=json_safe)
        else:
            out[f.name] = _json_safe(value) if json_safe else value
    return out


def write_config(
    config: Any,
    out_dir: str | os.PathLike,
    *,
    name: str = "config.json",
    command: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the resolved configuration (plus versions and the command) as JSON, atomically.

    ``config`` may be a dataclass instance or a plain mapping (for commands whose options are
    plain arguments). Returns the path written.
    """
    from healthsense.report import atomic_write_text
    from healthsense.runtime import versions

    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        resolved = config_to_dict(config)
        schema = f"{type(config).__module__}.{type(config).__qualname__}"
    elif isinstance(config, Mapping):
        resolved = _json_safe(dict(config))
        schema = None
    else:
        raise TypeError(
            f"config must be a dataclass instance or a mapping, got {type(config).__name__}"
        )
    payload: dict[str, Any] = {"config": resolved, "versions": versions()}
    if schema:
        payload["schema"] = schema
    if command:
        payload["command"] = command
    if extra:
        payload.update(_json_safe(dict(extra)))
    out = Path(out_dir) / name
    atomic_write_text(out, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    return out
