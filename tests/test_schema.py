"""The one validation mechanism (envs/schema.py): kinds, ranges, choices, nested schemas,
defaults and the errors' wording."""

from dataclasses import dataclass

import pytest

from envs.schema import Config, ConfigError, Option, check_value, deep_merge, option, validate


@pytest.mark.parametrize("value, opt, message", [
    (True, Option("int"), "x must be an integer, got True"),      # a bool is never an int
    (True, Option("float"), "x must be a number, got True"),
    (1, Option("bool"), "x must be true or false, got 1"),
    (7, Option("int", lo=0, hi=5), "x = 7 is out of range: allowed 0 ≤ value ≤ 5"),
    ("", Option("str"), "x must be a non-empty string, got ''"),
    ([3, 1], Option("int_range"), "x = [3, 1]: low must not exceed high"),
    (["a", "z"], Option("list", choices=("a", "b")), "x[1] is 'z'; allowed: ['a', 'b']"),
    ("c", Option("str", choices=("a", "b")), "x is 'c'; allowed: ['a', 'b']"),
    (None, Option("int"), "x must be an integer, got None"),
    (0, Option("int", check=lambda v: None if v else "must not be zero"), "x: must not be zero"),
])
def test_each_rule_is_an_error_naming_the_value(value, opt, message):
    with pytest.raises(ConfigError) as err:
        check_value(value, opt, "x")
    assert str(err.value) == message


def test_values_are_normalised():
    assert check_value(2, Option("float"), "x") == 2.0 and isinstance(check_value(2, Option("float"), "x"), float)
    assert check_value([1, 2], Option("int_range"), "x") == (1, 2)
    assert check_value(None, Option("int", nullable=True), "x") is None


def test_nested_schemas_name_the_key_path_and_fill_defaults():
    schema = {"a": {"b": Option("int", lo=1), "c": Option("str", default="z")}}
    assert validate({"a": {"b": 2}}, schema, "f.yaml: ") == {"a": {"b": 2, "c": "z"}}
    with pytest.raises(ConfigError, match=r"^f.yaml: a.b = 0 is out of range"):
        validate({"a": {"b": 0}}, schema, "f.yaml: ")
    with pytest.raises(ConfigError, match=r"^f.yaml: a: missing key\(s\) \['b'\]"):
        validate({"a": {}}, schema, "f.yaml: ")
    with pytest.raises(ConfigError, match=r"^f.yaml: a: unknown key\(s\) \['d'\]; valid keys: \['b', 'c'\]"):
        validate({"a": {"b": 1, "d": 0}}, schema, "f.yaml: ")


def test_deep_merge_merges_mappings_and_replaces_the_rest():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 0}
    assert deep_merge(base, {"a": {"c": [3]}, "e": 1}) == {"a": {"b": 1, "c": [3]}, "d": 0, "e": 1}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 0}  # untouched


@dataclass(frozen=True)
class Example(Config):
    rate: float = option(0.5, "float", "a rate", 0.0, 1.0)
    name: str = option("n", "str", "a name", choices=("n", "m"))


def test_config_dataclasses_validate_on_construction_and_override():
    assert Example().rate == 0.5
    assert Example.from_mapping({"rate": 1}, "cli").rate == 1.0
    with pytest.raises(ConfigError, match=r"^cli: unknown key\(s\) \['rat'\]; valid keys: \['name', 'rate'\]"):
        Example.from_mapping({"rat": 1}, "cli")
    with pytest.raises(ConfigError, match=r"^cli.name is 'x'; allowed: \['n', 'm'\]"):
        Example().with_overrides({"name": "x"}, "cli")
    with pytest.raises(ConfigError, match=r"^Example.rate = 2.0 is out of range"):
        Example(rate=2.0)


def test_a_key_added_later_is_recorded_only_away_from_its_default():
    """``level_stream`` came after run stores recorded task configs: at its default it is left
    out, so those specs still match; set, it is recorded; either way the dict loads back."""
    from envs.config import StarpilotConfig

    default = StarpilotConfig()
    assert "level_stream" not in default.to_dict() and "timeout" in default.to_dict()
    procgen = default.with_overrides({"level_stream": "procgen"})
    assert procgen.to_dict()["level_stream"] == "procgen"
    for config in (default, procgen):
        assert StarpilotConfig.from_mapping(config.to_dict(), "record") == config
