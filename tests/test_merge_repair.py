"""REPAIR on real NatureCNN actors and frames: after repair every hidden layer's per-channel
pre-activation statistics are the sources' weighted mean, and with identical sources the
network is unchanged."""

import torch
from merge_helpers import random_actor

import envs
from crl_merge.merge import interpolate
from crl_merge.merge.repair import hidden_layers, layer_statistics, repair
from crl_merge.models import make_actor


def frames(n=64):
    env = envs.make("starpilot/super", num_envs=n, seed=0)
    obs = [env.reset()]
    for _ in range(3):
        obs.append(env.step(torch.randint(0, 15, (n,)))[0])
    return torch.cat(obs)


def test_repaired_statistics_are_the_sources_weighted_mean():
    a, b = random_actor(0), random_actor(1)
    merged = make_actor()
    merged.load_state_dict(interpolate(a.state_dict(), b.state_dict(), 0.3))
    inputs = frames()
    layers = hidden_layers(merged)
    assert layers == ["conv1", "conv2", "conv3", "fc"]
    before = layer_statistics(merged, inputs, layers)
    repair(merged, [a, b], [0.3, 0.7], inputs)
    after = layer_statistics(merged, inputs, layers)
    sa, sb = layer_statistics(a, inputs, layers), layer_statistics(b, inputs, layers)
    for name in layers:
        for k in (0, 1):  # mean, std
            target = 0.3 * sa[name][k] + 0.7 * sb[name][k]
            assert torch.allclose(after[name][k], target, atol=1e-4, rtol=1e-3), (name, k)
    assert not torch.allclose(before["fc"][1], after["fc"][1])  # interpolation had shrunk the spread


def test_identical_sources_leave_the_network_unchanged():
    a = random_actor(3)
    merged = make_actor()
    merged.load_state_dict(a.state_dict())
    inputs = frames(16)
    repair(merged, [a, a], [0.5, 0.5], inputs)
    with torch.no_grad():
        assert torch.allclose(merged(inputs), a(inputs), atol=1e-5)


def test_repair_is_one_line_of_a_merge_plan_and_runs_on_rollouts():
    from crl_merge.procgen.merging import PairModels, merged_actor
    from crl_merge.procgen.plan import parse_merge_plan

    plan = parse_merge_plan({"rounds": {"r": [["00", "01"]]}, "methods": [
        {"method": "rebasin", "alpha": 0.5, "repair": True}, {"method": "rebasin", "alpha": 0.5}]},
        "suite.yaml: merge", {"a": ["00"], "b": ["01"]})
    repaired, plain = plan.methods
    assert repaired.row_id == "rebasin-a0.5-ab-repair" and repaired.needs_states and repaired.beyond_thesis
    a, b = random_actor(0), random_actor(1)
    task = envs.get_task("starpilot/super")
    pair = PairModels(a, b, task, task, 0, 1, 0, 1)
    fixed, unfixed = merged_actor(repaired, pair, 32), merged_actor(plain, pair, 32)
    with torch.no_grad():
        assert not torch.allclose(fixed(frames(4)), unfixed(frames(4)))
