"""A newcomer's mistakes at the command line: each is a one-line error naming the input and
what is allowed, with exit code 2 (1 for what the system refused), no traceback, and
nothing in the run store changed."""

import pytest

import envs
from crl_merge.checkpoint import save_model
from crl_merge.cli import main
from crl_merge.models import make_critic
from crl_merge.procgen.ppo import PPOConfig, train_run, training_spec
from crl_merge.store import RunStore
from merge_helpers import random_dt


def snapshot(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


@pytest.mark.parametrize("argv, message", [
    (["train", "starpilot/shoot", "--steps", "-100"], "--steps -100: must be ≥ 1 environment step"),
    (["train", "starpilot/shoot", "--steps", "0"], "--steps 0: must be ≥ 1 environment step"),
    (["env-stats", "starpilot/super", "--episodes", "0"], "episodes must be ≥ 1, got 0"),
    (["eval", "random", "starpilot/super", "--device", "tpu"], "--device 'tpu' is not a device this harness runs on"),
    (["train", "starpilot/shoot", "--steps", "64", "--ppo", "n_envs=1.5"], "--ppo.n_envs must be an integer"),
    (["run", "STORE_FILE_SUITE", "--preset", "smoke", "--store", "STORE_FILE"], "is a file; the run store is a folder"),
    (["eval", "CRITIC", "starpilot/super"], "a critic (role: critic); evaluate the actor checkpoint beside it"),
    (["eval", "DT", "starpilot/super"], "is a decision_transformer checkpoint; `crl-merge eval` plays Procgen actors"),
    (["run", "BROKEN_YAML", "--preset", "smoke"], "broken.yaml: not valid YAML"),
    (["run", "OLD_SUITE", "--preset", "quick"], "convert the file by moving presets.quick.total_steps"),
    (["run", "starpilot", "--preset", "quick", "--trainer", "sb3"],
     "--trainer sb3 trains in fp32 only, and the suite's training.precision at preset 'quick' is 'bf16'; "
     "add --precision fp32"),
    (["run", "starpilot", "--preset", "quick", "--batch", "2"], "--batch 2 trains in fp32 only"),
    # --precision replaces the suite's: past the precision check to the next one
    (["run", "starpilot", "--preset", "quick", "--trainer", "sb3", "--precision", "fp32", "--gpu-share", "2"],
     "--gpu-share 2.0: must be in (0, 1]"),
])
def test_a_mistake_is_one_line_with_exit_code_2(tmp_path, capsys, argv, message):
    critic, dt = tmp_path / "critic.safetensors", tmp_path / "dt.safetensors"
    save_model(critic, make_critic(0), role="critic", task="starpilot/super")
    save_model(dt, random_dt(0), task="hopper")
    (tmp_path / "store_file").write_text("not a folder")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    (tmp_path / "old.yaml").write_text(open("benchmarks/starpilot.yaml").read().replace(
        "  quick:                    # a meaningful run on a 2-core CPU\n    training: {total_steps: 300000, "
        "seeds_per_task: 3, precision: bf16}", "  quick:\n    total_steps: 300000"))
    names = {"CRITIC": critic, "DT": dt, "STORE_FILE": tmp_path / "store_file", "STORE_FILE_SUITE": "starpilot",
             "BROKEN_YAML": tmp_path / "broken.yaml", "OLD_SUITE": tmp_path / "old.yaml"}
    store = tmp_path / "runs"
    argv = [str(names.get(a, a)) for a in argv]
    if "--store" not in argv:
        argv += ["--store", str(store)] if argv[0] in ("train", "run") else []
    before = snapshot(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert snapshot(tmp_path) == before  # nothing written, nothing changed


def test_steps_are_reported_as_trained(tmp_path, capsys):
    """4,096 steps with 8 envs × 256 steps per rollout train 4,096 (whole rollouts); 3,000 are
    rounded up to 4,096, said on stderr, and the folder is named by what was trained."""
    store = tmp_path / "runs"
    common = ["--ppo", "n_envs=8", "n_steps=64", "batch_size=256", "n_epochs=1", "--store", str(store), "--device", "cpu"]
    assert main(["train", "starpilot/shoot", "--steps", "3000", *common]) == 0
    out = capsys.readouterr()
    assert "--steps 3,000 rounded up to 3,072: whole rollouts of n_envs × n_steps = 512 steps" in out.err
    assert "trained (3,072 steps)" in out.out
    assert (store / "single" / "starpilot_shoot" / "00-fast-shared-3072" / "actor.safetensors").is_file()


def test_a_finished_run_is_not_written_to_again(tmp_path):
    """Re-running finished work opens, creates, renames and deletes nothing in the store, so
    a finished store may be read-only (tested by what is touched: as root, as in CI,
    permission bits do not bind)."""
    task, ppo = envs.get_task("starpilot/shoot"), PPOConfig.from_mapping(
        {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 1}, "test")
    spec = training_spec(task, ppo, 128, 0, 0, "fast")
    run = RunStore(tmp_path / "runs").run("t", spec=spec)
    assert train_run(run, task, ppo, 128, 0, 0)
    files = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (tmp_path / "runs").rglob("*") if p.is_file()}
    again = RunStore(tmp_path / "runs").run("t", spec=spec)
    assert not train_run(again, task, ppo, 128, 0, 0)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (tmp_path / "runs").rglob("*") if p.is_file()} == files


def test_run_needs_a_preset_and_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "starpilot"])
    assert exit_.value.code == 2 and "the following arguments are required: --preset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: shared)" in text and "(default: runs)" in text and "(default: fast)" in text


def test_a_full_disk_is_one_line_and_leaves_no_partial_artifact(tmp_path):
    """A write the system refuses (here: a file-size limit, as a full disk refuses one) ends
    the command with one line and exit code 1, and the store holds only complete artifacts."""
    import json
    import resource
    import signal
    import subprocess
    import sys

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # checkpoints are ~7 MB

    store = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "crl_merge.cli", "train", "starpilot/shoot", "--steps", "256",
                           "--ppo", "n_envs=4", "n_steps=64", "batch_size=128", "n_epochs=1", "--store", str(store),
                           "--device", "cpu"], capture_output=True, text=True, timeout=300, preexec_fn=limit_file_size)
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("crl-merge: error: ") and "File too large" in last and "Traceback" not in done.stderr
    for manifest in store.rglob("manifest.json"):
        for name, entry in json.loads(manifest.read_text())["artifacts"].items():
            assert all((manifest.parent / f).is_file() for f in entry["files"]), name
    assert not list(store.rglob("*.tmp"))  # no temporary file left behind
