"""YAML configs mapped onto dataclasses, with `--section.key=value` command-line overrides.

Unknown keys and values of the wrong type are errors that name the file and the field, so a typo in
a config never silently falls back to a default.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from common.errors import ConfigError

T = TypeVar("T")

#: the built-in configs: configs/ of the source tree, installed beside the packages as package data
CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"


def config_path(path: str | Path) -> Path:
    """Where a config file is: `path` itself where it exists (relative to the working folder or
    absolute); else, for a path that starts with `configs/`, the built-in config of that name, so that
    `configs/tokenizer/event.yaml` is found from any working folder. Otherwise `path` unchanged (the
    caller's error names it as given)."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    if path.parts[:1] == ("configs",):
        builtin = CONFIG_ROOT.joinpath(*path.parts[1:])
        if builtin.exists():
            return builtin
    return path


def _check_value(value: Any, tp: Any, where: str) -> Any:
    """Return `value` converted to type `tp`, or raise ConfigError naming `where`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_value(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {tp}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [_check_value(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        val_tp = args[1] if len(args) == 2 else Any
        return {str(k): _check_value(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported config type {tp}")


def check_ranges(cfg, positive: tuple[str, ...] = (), nonnegative: tuple[str, ...] = (),
                 fractions: tuple[str, ...] = (), devices: tuple[str, ...] = ("device",)) -> None:
    """ValueError naming the first field out of its range: sizes >= 1, counts and rates >= 0, fractions in
    [0, 1), devices auto/cpu/cuda[:N] (for __post_init__ of config sections)."""
    for name in positive:  # `not >=`: NaN is out of every range
        if not getattr(cfg, name) >= 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    for name in nonnegative:
        if not getattr(cfg, name) >= 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    for name in fractions:
        if not 0 <= getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be in [0, 1), got {getattr(cfg, name)}")
    for name in devices:
        value = getattr(cfg, name, None)
        if value is not None and not is_device_name(value):
            raise ValueError(f"{name} must be auto, cpu, cuda or cuda:N, got {value!r}")


def is_device_name(text: str) -> bool:
    """auto, cpu, cuda or cuda:N: what torch can be asked for here."""
    head, _, index = str(text).partition(":")
    return text in ("auto", "cpu", "cuda") or (head == "cuda" and index.isdigit())


def from_dict(cls: type[T], data: dict, where: str = "config") -> T:
    """Build dataclass `cls` from a mapping, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    missing = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    kwargs = {k: _check_value(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None


def to_dict(obj: Any) -> Any:
    """A dataclass as plain dicts/lists, for YAML/JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def _parse_scalar(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `section.key=value` overrides (leading dashes allowed) to a nested mapping."""
    data = dict(data)
    for item in overrides:
        item = item.lstrip("-")
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected section.key=value")
        key, text = item.split("=", 1)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node[parts[-1]] = _parse_scalar(text)
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Load dataclass `cls` from a YAML file (or its defaults) with command-line overrides applied; a
    `configs/...` path not found in the working folder is a built-in config (`config_path`)."""
    import yaml

    data: dict = {}
    where = "config"
    if path is not None:
        path = config_path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        with open(path) as f:
            try:
                loaded = yaml.safe_load(f)
            except yaml.YAMLError as err:
                raise ConfigError(f"{path}: not valid YAML ({err})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        data = loaded or {}
        where = str(path)
    if overrides:
        data = apply_overrides(data, overrides)
    return from_dict(cls, data, where)
