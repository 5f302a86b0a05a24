"""Dataclass configs: to/from dicts, YAML on disk, dotted `key=value` overrides.

Every configurable part defines a dataclass beside its code. Nested dataclasses
become nested dicts; unknown keys are errors (a typo never silently does nothing).

    cfg = from_dict(FbankConfig, {"num_mel_bins": 40})
    cfg = apply_overrides(cfg, ["num_mel_bins=80", "frame_opts.dither=0"])
    to_dict(cfg) -> plain dict, safe for YAML/JSON
"""

from __future__ import annotations

import copy

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml

from speechunits.errors import ConfigError, UnknownNameError

C = TypeVar("C")


OMIT_IF_DEFAULT = {"omit_if_default": True}  # field metadata: see to_dict


def to_dict(cfg) -> dict:
    """A dataclass (possibly nested) as a plain dict of built-in types. A field declared with
    `field(default=..., metadata=OMIT_IF_DEFAULT)` is left out while it holds its default: a
    setting added after records were written, so that those records (extract.json, a feature
    dir's meta.json) still equal what the same settings give now; from_dict fills it back."""
    if not dataclasses.is_dataclass(cfg):
        raise TypeError(f"expected a dataclass instance, got {type(cfg).__name__}")
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.metadata.get("omit_if_default") and value == f.default:
            continue
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _dataclass_in(tp) -> type | None:
    """The dataclass type inside `tp` (handles `X | None`)."""
    if dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


def from_dict(cls: type[C], data: dict | None, where: str = "") -> C:
    """Build dataclass `cls` from `data`; missing keys keep their defaults."""
    data = dict(data or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise UnknownNameError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)} for {cls.__name__}; "
            f"known: {', '.join(sorted(names))}"
        )
    hints = _field_types(cls)
    kwargs = {}
    for name, value in data.items():
        sub = _dataclass_in(hints[name])
        if sub is not None and isinstance(value, dict):
            value = from_dict(sub, value, where=f"{where}.{name}" if where else name)
        elif isinstance(value, list) and (hints[name] is tuple or typing.get_origin(hints[name]) is tuple):
            value = tuple(value)
        elif hints[name] in (float, float | None) and isinstance(value, (str, int)) and not isinstance(value, bool):
            value = _to_float(value, f"{where}.{name}" if where else name)
        kwargs[name] = value
    return cls(**kwargs)


def _to_float(value, key: str) -> float:
    """YAML 1.1 reads `2e-3` as a string; a float field takes it as the number."""
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"config key {key}: expected a number, got {value!r}") from None


def parse_value(text: str):
    """A command-line value as YAML would read it: 3 -> int, 0.5 -> float, true, null, [1,2]."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):  # YAML 1.1 reads "2e-3" as a string
        try:
            return float(value)
        except ValueError:
            pass
    return value


def set_dotted(data: dict, key: str, value) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def override_mapping(data: dict | None, overrides: Iterable[str], sections: Iterable[str] | None = None) -> dict:
    """The one `key.sub=value` override parser: a deep copy of the raw mapping `data` with
    each override's value (parsed by parse_value) set at its dotted key. With `sections`,
    every key must start with one of them. Raises ValueError / KeyError naming the override."""
    data = copy.deepcopy(dict(data or {}))
    known = tuple(sections) if sections is not None else None
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        key = key.strip()
        if known is not None and key.split(".", 1)[0] not in known:
            raise UnknownNameError(f"override {item!r}: keys start with a section: {', '.join(k + '.' for k in known)}")
        set_dotted(data, key, parse_value(text))
    return data


def apply_overrides(cfg: C, overrides: Iterable[str]) -> C:
    """Return a new config with `key.sub=value` overrides applied (validated)."""
    return from_dict(type(cfg), override_mapping(to_dict(cfg), overrides))


def load_yaml(path: str | os.PathLike) -> dict:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping at the top level")
    return data


def save_yaml(cfg, path: str | os.PathLike) -> None:
    from speechunits.fileio import write_text

    data = to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    write_text(Path(path), yaml.safe_dump(data, sort_keys=False))
