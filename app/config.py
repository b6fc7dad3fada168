"""Dataclass configs, merged once at the entry point: defaults <- YAML file <- CLI overrides, then frozen.

Each component owns one frozen dataclass config (``HandModelConfig`` ...) and a ``build_x(cfg)`` factory.
``AppConfig`` groups them. Overrides use dotted keys: ``hand_model.side=left``.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

MANO_DIR_ENV = "REALHANDS_MANO_DIR"


class ConfigError(ValueError):
    """A configuration value or file is wrong; the message names the key and the fix."""


@dataclass(frozen=True)
class HandModelConfig:
    """Which hand model to use. mano_dir: folder with MANO_RIGHT.pkl / MANO_LEFT.pkl, or '' for the
    embedded open model (the environment variable REALHANDS_MANO_DIR is used when empty)."""

    mano_dir: str = ""
    device: str = "cpu"

    def resolved_mano_dir(self) -> str:
        return self.mano_dir or os.environ.get(MANO_DIR_ENV, "")


@dataclass(frozen=True)
class AppConfig:
    source: str = "auto"
    hand_model: HandModelConfig = field(default_factory=HandModelConfig)


def _coerce(value, typ, key: str):
    """Convert a YAML/CLI value to the field's annotated type (str from the CLI, native from YAML)."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        typ = args[0]
    try:
        if typ is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if typ in (int, float, str, bool):
            return typ(value)
        if typing.get_origin(typ) is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            sub = typing.get_args(typ)[0]
            return tuple(sub(v) for v in items)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config key '{key}': cannot read {value!r} as {getattr(typ, '__name__', typ)}") from exc
    return value


def _apply(cfg, updates: dict, prefix: str = ""):
    """Return a copy of the dataclass ``cfg`` with nested ``updates`` applied; unknown keys are errors."""
    hints = typing.get_type_hints(type(cfg))
    names = {f.name for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in updates.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key '{full}'; known keys: {sorted(names)}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{full}' is a section; give it a mapping")
            changes[key] = _apply(current, value, full + ".")
        else:
            changes[key] = _coerce(value, hints[key], full)
    return dataclasses.replace(cfg, **changes)


def _dotted_to_nested(overrides: dict) -> dict:
    nested: dict = {}
    for key, value in overrides.items():
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with clear errors for a missing or malformed file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found; pass an existing YAML file to --config")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of keys to values at the top level")
    return data


def merge_config(default, yaml_path: str | Path | None = None, overrides: dict | None = None):
    """defaults <- YAML <- overrides (dotted keys, None values ignored). Returns a new frozen config."""
    cfg = default
    if yaml_path:
        cfg = _apply(cfg, load_yaml(yaml_path))
    if overrides:
        cfg = _apply(cfg, _dotted_to_nested({k: v for k, v in overrides.items() if v is not None}))
    return cfg
