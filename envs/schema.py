"""The one config-validation mechanism of the project: every config file and CLI override
(game configs, PPO hyperparameters, suite files of both tracks) is checked here.

A value is described by an :class:`Option` (its kind, range, allowed choices, default and
doc). Options are used in two ways:

* as ``dataclasses.field`` metadata (:func:`option`), for frozen config dataclasses that
  inherit :class:`Config`: construction validates every field, ``from_mapping`` applies
  overrides with unknown keys named;
* as a nested schema (a ``dict`` of options and sub-schemas) that :func:`validate` walks,
  for files whose sections are read as plain mappings.

Every error is a :class:`ConfigError` that names where the value came from (file and dotted
key path), the value, and what is allowed. This module sits at the bottom of the project
(``envs`` imports nothing from ``crl_merge``), so both packages share it.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

KINDS = ("bool", "int", "float", "str", "int_range", "list")
NO_DEFAULT = object()  # an Option without a default


class ConfigError(ValueError):
    """A config value or file is invalid: the message names the key and what is allowed."""


@dataclass(frozen=True)
class Option:
    """One value's rules. ``kind``: bool, int (never a bool), float (an int or float, never a
    bool), str, int_range (``[low, high]``, both inclusive), list (of ``item``);
    ``lo``/``hi`` bound numbers (inclusive); ``choices`` lists the allowed values (for a list:
    of its items); ``check`` is an extra rule that returns an error text or None."""

    kind: str
    doc: str = ""
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None
    item: "Option | None" = None
    default: Any = NO_DEFAULT
    required: bool = True
    check: Callable[[Any], str | None] | None = None
    nullable: bool = False  # None (YAML null) is allowed and means "not set"
    # a key added after records were made: ``Config.to_dict`` leaves it out at its default,
    # so that the records made before it (run-store specs) still match
    recorded_at_default: bool = True

    def __post_init__(self):
        if self.kind not in KINDS:
            raise AssertionError(f"unknown option kind {self.kind!r}; kinds: {KINDS}")


def _range_text(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"{lo} ≤ value ≤ {hi}"
    return f"value ≥ {lo}" if lo is not None else f"value ≤ {hi}"


def check_value(value: Any, opt: Option, where: str) -> Any:
    """``value`` checked against ``opt``; returned normalised (ints as floats for a float,
    lists as tuples for an int range). ``where`` names the value in the error."""
    kind = opt.kind
    if value is None and opt.nullable:
        return None
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
    elif kind in ("int", "float"):
        ok = isinstance(value, int if kind == "int" else (int, float)) and not isinstance(value, bool)
        if not ok:
            raise ConfigError(f"{where} must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}")
        value = float(value) if kind == "float" else value
        if (opt.lo is not None and value < opt.lo) or (opt.hi is not None and value > opt.hi):
            raise ConfigError(f"{where} = {value!r} is out of range: allowed {_range_text(opt.lo, opt.hi)}")
    elif kind == "str":
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where} must be a non-empty string, got {value!r}")
    elif kind == "int_range":
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) for v in value)):
            raise ConfigError(f"{where} must be a pair of integers [low, high] (both inclusive), got {value!r}")
        if value[0] > value[1]:
            raise ConfigError(f"{where} = {list(value)!r}: low must not exceed high")
        for v in value:
            if (opt.lo is not None and v < opt.lo) or (opt.hi is not None and v > opt.hi):
                raise ConfigError(f"{where} = {list(value)!r} is out of range: allowed {_range_text(opt.lo, opt.hi)}")
        value = tuple(value)
    elif kind == "list":
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{where} must be a non-empty list, got {value!r}")
        item = opt.item or Option("str")
        value = tuple(check_value(v, dataclasses.replace(item, choices=item.choices or opt.choices), f"{where}[{i}]")
                      for i, v in enumerate(value))
    if opt.choices is not None and kind != "list" and value not in opt.choices:
        raise ConfigError(f"{where} is {value!r}; allowed: {list(opt.choices)}")
    if opt.check is not None and (problem := opt.check(value)):
        raise ConfigError(f"{where}: {problem}")
    return value


def join(where: str, key) -> str:
    """A dotted key path: ``join("suite.yaml: ppo", "gamma")`` → ``suite.yaml: ppo.gamma``."""
    if not where:
        return str(key)
    return f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if not where.endswith(": ") else where + key


def mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping of key: value, got {value!r}")
    return value


def check_keys(values: Mapping, valid, where: str, required=()) -> None:
    """Unknown keys (with the valid ones listed) and missing required keys are errors."""
    unknown = sorted(set(values) - set(valid), key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(valid)}")
    missing = sorted(set(required) - set(values))
    if missing:
        raise ConfigError(f"{where}: missing key(s) {missing}")


Schema = dict  # key → Option or a nested Schema


def validate(value: Any, schema: Schema | Option, where: str) -> Any:
    """A nested mapping checked against ``schema``; returns a copy with every option's value
    normalised and defaults filled in. Keys of a schema are required unless their option
    says ``required=False`` or has a default."""
    if isinstance(schema, Option):
        return check_value(value, schema, where)
    mapping(value, where)
    required = [k for k, s in schema.items()
                if isinstance(s, dict) or (s.required and s.default is NO_DEFAULT)]
    check_keys(value, schema, where, required)
    out = {}
    for key, sub in schema.items():
        if key in value:
            out[key] = validate(value[key], sub, join(where, key))
        elif isinstance(sub, Option) and sub.default is not NO_DEFAULT:
            out[key] = copy.deepcopy(sub.default)
    return out


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """``base`` with ``override`` applied; nested mappings merge key by key."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        out[key] = (deep_merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
                    else copy.deepcopy(value))
    return out


# -- config dataclasses ----------------------------------------------------------------------

def option(default, kind: str, doc: str = "", lo=None, hi=None, choices=None, item=None, check=None,
           nullable: bool = False, recorded_at_default: bool = True):
    """A dataclass field validated by :class:`Config` (its metadata is the :class:`Option`)."""
    opt = Option(kind, doc, lo, hi, None if choices is None else tuple(choices), item, check=check,
                 nullable=nullable, recorded_at_default=recorded_at_default)
    return field(default=default, metadata={"option": opt})


class Config:
    """Mixin for frozen config dataclasses whose fields are made with :func:`option`:
    validated on construction, with overrides from mappings (YAML, CLI)."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            opt = f.metadata["option"]
            value = check_value(getattr(self, f.name), opt, f"{type(self).__name__}.{f.name}")
            object.__setattr__(self, f.name, value)

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def options(cls) -> dict[str, Option]:
        return {f.name: f.metadata["option"] for f in dataclasses.fields(cls)}

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "overrides"):
        """A copy with ``overrides`` applied; errors name ``source`` and the key."""
        mapping(overrides, source)
        check_keys(overrides, self.keys(), source)
        options = self.options()
        checked = {k: check_value(v, options[k], join(source, k)) for k, v in overrides.items()}
        return dataclasses.replace(self, **checked)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str, base=None):
        """``base`` (default: the defaults) with ``values`` applied."""
        return (base or cls()).with_overrides(values, where)

    def to_dict(self) -> dict[str, Any]:
        """Every key's value, less the keys at their default that say ``recorded_at_default=False``."""
        omitted = {f.name for f in dataclasses.fields(self) if not f.metadata["option"].recorded_at_default
                   and getattr(self, f.name) == f.default}
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()
                if k not in omitted}
