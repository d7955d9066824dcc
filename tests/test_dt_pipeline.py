"""Acceptance: tiny datasets from behaviour policies, DTs trained for a few steps, every
experiment of the suite run on them (merges, perturbations, MFF, Fisher, initialisations),
every table and figure written; a second run does no training or evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from crl_merge.dt.pipeline import run_suite
from crl_merge.dt.suite import load_suite
from crl_merge.store import RunStore
from crl_merge.dt.behaviour_actor import SquashedGaussianActor, save_actor
from crl_merge.dt.behaviour import publish
from envs.mujoco.tasks import TASKS

SUITE = Path(__file__).resolve().parent.parent / "benchmarks" / "mujoco_dt.yaml"


def make_policies(root: Path) -> Path:
    """Published behaviour policies made of fresh actors (no SAC training in tests)."""
    for name, task in TASKS.items():
        for step, eval_return in {10: 100.0, 20: 500.0, 30: 1000.0}.items():
            torch.manual_seed(step)
            save_actor(root / "training" / name / "snapshots" / f"step_{step:07d}",
                       SquashedGaussianActor(task.state_dim, task.act_dim, (16,)), task=name, step=step, seed=0,
                       eval_return=eval_return, eval_length=50.0, eval_episodes=1)
        publish(task, root / "training" / name, root / "policies", learning_starts=10)
    return root / "policies"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread for the module-scoped fixtures too (conftest's fixture is per test)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def smoke_suite_on(root: Path, policies: Path):
    """The suite's smoke preset with its data under ``root`` rolled out from ``policies``."""
    raw = yaml.safe_load(SUITE.read_text())
    raw["presets"]["smoke"]["datasets"] = {**raw["presets"]["smoke"]["datasets"], "root": str(root / "data"),
                                           "policies": str(policies)}
    path = root / "suite.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_suite(path, "smoke")


@pytest.fixture(scope="module")
def smoke_suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("dt")
    return smoke_suite_on(root, make_policies(root)), root


def test_whole_suite_writes_every_table_and_figure(smoke_suite):
    suite, root = smoke_suite
    written = run_suite(suite, root / "store", root / "results", command="pytest")
    names = {p.name for p in written}
    assert {"tables.md", "single_task_scores.csv", "table1_mff.csv", "table2_attention_perturbation.csv",
            "table3_multitask_independent.csv", "table3_multitask_shared_seed.csv", "table3_multitask_cotrained.csv",
            "table3_distances.csv", "fig1_single_layer.png", "fig2_l2_distance.png", "fig3_incremental.png",
            "fig4_attention_interpolation.png"} <= names
    tables = (root / "results" / "tables.md").read_text()
    for row in ("Frozen Transformer from hopper", "attention+mlp (MFF)", "attention (M)", "medium-expert",
                "Removed attention", "attention+mlp (Fisher M)", "pre-merge D4RL score", "cotrained"):
        assert row in tables
    assert "—" not in (root / "results" / "table1_mff.csv").read_text()
    table2 = (root / "results" / "table2_attention_perturbation.csv").read_text().splitlines()
    assert len(table2) == 1 + 3 * 3 and "—" not in "".join(table2[1:])
    table3 = (root / "results" / "table3_multitask_cotrained.csv").read_text().splitlines()
    assert len(table3) == 1 + 4 * 4 + 1  # 4 methods × (3 pairs + all) + pre-merge scores

    # merged models are the best of their evaluations; the co-trained model's per-env finetune is anchored
    store = RunStore(root / "store")
    single = store.existing("dt", "smoke", "model", "hopper-expert", "seed0").load_model("model")[1]
    assert [e["step"] for e in single["evaluations"]] == [2, 4] and single["kept_step"] in (2, 4)
    anchored = store.existing("dt", "smoke", "finetune", "cotrained-medium-seed0-anchored", "hopper").load_model("model")[1]
    assert anchored["train"]["init_reg"] == 1e-4
    assert {"transformer.ln_f.weight", "io.hopper.embed_timestep.weight"} <= set(anchored["frozen"])

    # everything is in the store now: a second run trains and evaluates nothing
    before = {p: p.stat().st_mtime_ns for p in (root / "store").rglob("*.safetensors")}
    run_suite(suite, store.root, root / "results2")
    after = {p: p.stat().st_mtime_ns for p in (root / "store").rglob("*.safetensors")}
    assert before == after
    body = lambda text: text[text.index("### "):]  # noqa: E731  (the header names the command and date)
    assert body((root / "results2" / "tables.md").read_text()) == body(tables)


def test_only_runs_named_experiments_and_dashes_the_rest(smoke_suite, tmp_path):
    suite, root = smoke_suite
    written = run_suite(suite, tmp_path / "store", tmp_path / "results", only=["attention_perturbation"])
    assert "fig1_single_layer.png" not in {p.name for p in written}
    assert "—" in (tmp_path / "results" / "table1_mff.csv").read_text()
    with pytest.raises(ValueError, match="unknown experiment"):
        run_suite(suite, tmp_path / "store", tmp_path / "results", only=["fig9"])


def test_commands_generate_datasets_and_train(smoke_suite, tmp_path, capsys):
    from crl_merge.cli import build_parser

    suite, root = smoke_suite
    parser = build_parser()
    policies = suite.config["datasets"]["policies"]
    args = parser.parse_args(["dt-datasets", "walker2d", "--kinds", "expert", "--rows", "300", "--root",
                              str(tmp_path), "--policies", policies])
    assert args.func(args) == 0
    assert (tmp_path / "300" / "walker2d-expert.hdf5").is_file()
    args = parser.parse_args(["dt-train", str(suite.path), "--preset", "smoke", "--env", "hopper", "--dataset",
                              "medium", "--store", str(tmp_path / "store"), "--device", "cpu"])
    assert args.func(args) == 0
    assert "hopper-medium (independent init, preset smoke): mean return" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["dt-run", "--preset", "huge"])
    assert parser.parse_args(["dt-datasets"]).tasks == []     # every task (argparse on 3.11 once refused this)
    with pytest.raises(SystemExit):
        parser.parse_args(["dt-datasets", "ant"])
    assert "unknown task 'ant'; valid: halfcheetah, hopper, walker2d" in capsys.readouterr().err


def test_rows_measured_on_other_data_are_refused_not_served(tmp_path):
    """Behaviour policies re-published at the same path (here: the expert and medium choice
    swapped in policies.json, no snapshot changed) make new datasets, and an experiment's
    stored rows, measured on the old ones, are refused by name instead of reported."""
    import json

    from crl_merge.store import StoreError

    policies = make_policies(tmp_path)
    suite = smoke_suite_on(tmp_path, policies)
    run_suite(suite, tmp_path / "store", tmp_path / "results", only=["merge_freeze_finetune"])
    data_file = tmp_path / "data" / "3000" / "hopper-expert.hdf5"
    before = data_file.read_bytes()

    chosen = json.loads((policies / "hopper" / "policies.json").read_text())
    chosen["expert"], chosen["medium"] = chosen["medium"], chosen["expert"]
    (policies / "hopper" / "policies.json").write_text(json.dumps(chosen))
    with pytest.raises(StoreError, match=r"experiment/\w+ was made for other settings \(data\.hopper-expert\.policies_sha256"):
        run_suite(suite, tmp_path / "store", tmp_path / "results", only=["merge_freeze_finetune"])
    assert data_file.read_bytes() != before  # rolled out anew from the other snapshot
