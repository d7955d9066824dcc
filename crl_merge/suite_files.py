"""Suite files of both tracks (``benchmarks/*.yaml``): finding them, reading them, and the
one preset mechanism.

A suite file holds its settings at the thesis's or paper's scale at the top level, and
``presets`` (``smoke``, ``quick``, ``paper``) that override any of them: a preset is a
mapping shaped like the top level, merged into it key by key (nested mappings merge, other
values replace). Each track validates the merged result with :mod:`envs.schema`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from envs.schema import ConfigError, deep_merge, mapping

PROJECT_DIR = Path(__file__).resolve().parent.parent
BENCHMARKS_DIR = PROJECT_DIR / "benchmarks"
PRESET_NAMES = ("smoke", "quick", "paper")


def project_path(path: str | Path) -> Path:
    """A path that exists as given (from the working directory), else the same relative path
    inside the project (``benchmarks/mujoco_dt.yaml``, ``crl_merge/dt/policies`` from any
    folder), else the path as given."""
    path = Path(path)
    if path.exists() or path.is_absolute() or not (PROJECT_DIR / path).exists():
        return path
    return PROJECT_DIR / path


def suite_path(name_or_path: str | Path) -> Path:
    """``"starpilot"`` → ``benchmarks/starpilot.yaml`` (the project's, from any working
    directory); a path to a YAML file is found with :func:`project_path`."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        path = project_path(path)
        if not path.is_file():
            raise ConfigError(f"suite file {path} does not exist")
        return path
    candidate = BENCHMARKS_DIR / f"{name_or_path}.yaml"
    if not candidate.is_file():
        known = sorted(p.stem for p in BENCHMARKS_DIR.glob("*.yaml")) if BENCHMARKS_DIR.is_dir() else []
        raise ConfigError(f"unknown suite {str(name_or_path)!r}; built-in suites: {known}, or give a path to a .yaml file")
    return candidate


def read_suite_file(path: Path) -> dict:
    """The file's top-level mapping; a YAML syntax error names the file and the line."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    return mapping(data, f"{path}: the top level")


def with_preset(data: dict, preset: str, path: Path, renamed: dict[str, str] | None = None) -> dict:
    """The file's settings with ``preset`` merged in (``presets`` itself removed).

    ``renamed`` maps keys that presets no longer take to the key path they moved to, so a
    file written for an earlier version fails with how to convert it."""
    if preset not in PRESET_NAMES:
        raise ConfigError(f"{path}: unknown preset {preset!r}; allowed: {list(PRESET_NAMES)}")
    presets = mapping(data.get("presets") or {}, f"{path}: presets")
    unknown = sorted(set(presets) - set(PRESET_NAMES))
    if unknown:
        raise ConfigError(f"{path}: presets: unknown preset(s) {unknown}; valid presets: {list(PRESET_NAMES)}")
    if preset not in presets:
        raise ConfigError(f"{path}: preset {preset!r} is not defined; defined: {sorted(presets)}")
    override = mapping(presets[preset] or {}, f"{path}: presets.{preset}")
    old = sorted(set(override) & set(renamed or {}))
    if old:
        moves = ", ".join(f"presets.{preset}.{k} → presets.{preset}.{renamed[k]}" for k in old)
        raise ConfigError(f"{path}: presets.{preset}: a preset now overrides the suite's own sections, key by "
                          f"key; convert the file by moving {moves}")
    return deep_merge({k: v for k, v in data.items() if k != "presets"}, override)
