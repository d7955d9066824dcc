"""bf16 training: the input-scaling fold is the bf16 autocast of the scaled frames up to bf16
rounding, fp32 keeps the reference arithmetic bit for bit, ``fast`` trains under bf16
and records it, the reference and the batched trainer refuse it, and bad values are named."""

import sys

import pytest
import torch

import envs
from crl_merge.checkpoint import load_model
from crl_merge.host_memory import keep_freed_memory
from crl_merge.models import make_actor
from crl_merge.procgen.ppo import PPOConfig, train_run, train_runs_batched, training_spec
from crl_merge.procgen.ppo.fast import train_fast
from crl_merge.procgen.suite import Training
from crl_merge.store import RunStore
from envs.schema import ConfigError

TINY = PPOConfig.from_mapping({"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 1}, "test")
FRAMES = torch.randint(0, 256, (32, 64, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_fp32_features_are_the_reference_arithmetic():
    actor = make_actor(0)
    reference = torch.relu(actor.conv1(FRAMES.permute(0, 3, 1, 2).float() / 255.0))
    assert torch.equal(actor.features(FRAMES)["conv1"], reference)


def test_bf16_fold_is_as_close_to_fp32_as_autocast_of_the_scaled_frames():
    actor = make_actor(0)
    exact = actor.features(FRAMES)["conv1"]
    with bf16():
        folded = actor.features(FRAMES)["conv1"]
        autocast_of_scaled = torch.relu(actor.conv1(FRAMES.permute(0, 3, 1, 2).float() / 255.0))
    assert folded.dtype == torch.bfloat16
    fold_error = (folded.float() - exact).abs().max().item()
    autocast_error = (autocast_of_scaled.float() - exact).abs().max().item()
    assert 0 < fold_error <= 2 * autocast_error  # bf16 rounding, no worse than autocast's own
    assert fold_error < 1e-2 * exact.abs().max().item()
    with bf16():
        logits = actor(FRAMES)
    assert torch.allclose(logits.float(), actor(FRAMES), atol=2e-3)  # the whole network


def test_bf16_training_is_recorded_deterministic_and_near_fp32(tmp_path):
    task = envs.get_task("starpilot/shoot")
    actors = {}
    for name, precision in (("fp32", "fp32"), ("bf16", "bf16"), ("bf16-again", "bf16")):
        spec = training_spec(task, TINY, 256, 0, 0, "fast", precision=precision)
        assert ("precision" in spec) == (precision == "bf16")  # fp32 runs keep their old spec
        run = RunStore(tmp_path).run(name, spec=spec)
        assert train_run(run, task, TINY, 256, 0, 0, precision=precision)
        actors[name], meta = load_model(run.path / "actor")
        assert meta.get("precision", "fp32") == precision
    same = [torch.equal(a, b) for a, b in zip(actors["bf16"].state_dict().values(),
                                               actors["bf16-again"].state_dict().values())]
    assert all(same)
    gaps = [(a - b).abs().max().item() for a, b in zip(actors["bf16"].state_dict().values(),
                                                        actors["fp32"].state_dict().values())]
    assert 0 < max(gaps) < 1e-2  # two updates apart by rounding only


def test_the_batched_trainer_refuses_bf16(tmp_path):
    run = RunStore(tmp_path).run("t", spec={})
    with pytest.raises(ValueError, match="batched trainer.*--batch 1"):
        train_runs_batched([run, run], [envs.get_task("starpilot/shoot")] * 2, TINY, 256, [(0, 0), (1, 1)],
                           precision="bf16")


def test_the_reference_trainer_and_bad_values_are_refused(tmp_path):
    task = envs.get_task("starpilot/shoot")
    run = RunStore(tmp_path).run("t", spec={})
    with pytest.raises(ValueError, match="'sb3' .*fp32"):
        train_run(run, task, TINY, 256, 0, 0, trainer="sb3", precision="bf16")
    with pytest.raises(ValueError, match=r"unknown precision 'fp16'; valid precisions: \['fp32', 'bf16'\]"):
        train_fast(task, TINY, 128, 0, 0, precision="fp16")
    with pytest.raises(ConfigError, match="precision"):
        Training.from_mapping({"precision": "fp16"}, "training")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_is_kept_with_glibc():
    assert keep_freed_memory()
