"""The project's shape holds: ``envs`` never imports ``crl_merge``; one ``ConfigError`` class
and one merge-method table; each track's package holds its own suite, protocol, evaluation
and report."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_module_under_envs_imports_crl_merge():
    offenders = {str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p) if m.split(".")[0] == "crl_merge")
                 for p in (ROOT / "envs").rglob("*.py")}
    assert {p: m for p, m in offenders.items() if m} == {}


def classes_named(name: str) -> list[str]:
    found = []
    for path in [*(ROOT / "crl_merge").rglob("*.py"), *(ROOT / "envs").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name == name:
                found.append(str(path.relative_to(ROOT)))
    return found


def test_one_config_error_class():
    assert classes_named("ConfigError") == ["envs/schema.py"]


def test_one_merge_method_table_serves_the_suite_plan_and_the_cli():
    from crl_merge.merge.cli import add_commands  # noqa: F401  (imports the table it offers)
    from crl_merge.merge.methods import MERGE_METHODS, WEIGHTS_ONLY
    from crl_merge.procgen import plan

    assert plan.MERGE_METHODS is MERGE_METHODS and set(WEIGHTS_ONLY) < set(MERGE_METHODS)
    tables = [str(p.relative_to(ROOT)) for p in (ROOT / "crl_merge").rglob("*.py")
              if "MERGE_METHODS: dict" in p.read_text() or "\nMETHODS = {" in p.read_text()]
    assert tables == ["crl_merge/merge/methods.py"]


@pytest.mark.parametrize("track", ["procgen", "dt"])
def test_each_track_holds_its_suite_protocol_evaluation_and_report(track):
    package = ROOT / "crl_merge" / track
    protocol = "protocol.py" if track == "procgen" else "pipeline.py"
    for module in ("suite.py", protocol, "evaluate.py", "report.py", "cli.py"):
        assert (package / module).is_file(), f"crl_merge/{track}/{module}"
