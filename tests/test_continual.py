"""The continual protocols (merging during training): the merge of two whole actor-critics,
what each protocol trains and keeps, pinned by settings whose outcome is known (α = 1 leaves
A as plain training makes it; α = 0 hands over the partner's weights), and the plan's checks."""

import pytest
import torch
import yaml

from crl_merge.merge.specs import PermutationSpec, random_permutation, apply_permutation
from crl_merge.models import make_actor_critic
from crl_merge.models.nature_cnn import actor_critic_permutation_axes
from crl_merge.procgen import layout
from crl_merge.procgen.continual import continual_jobs, continual_run, merge_policies, train_continual
from crl_merge.procgen.plan import ContinualRow
from crl_merge.procgen.ppo import snapshot_artifact, train_run
from crl_merge.procgen.ppo.fast import train_fast
from crl_merge.procgen.runs import training_run
from crl_merge.procgen.suite import load_suite
from crl_merge.store import RunStore
from envs.schema import ConfigError


def tiny_suite(tmp_path, continual, **merge):
    """The Starpilot suite at 3 updates of 4 environments × 32 steps, one model per task."""
    data = yaml.safe_load(open("benchmarks/starpilot.yaml"))
    del data["reference"]
    data["merge"]["continual"] = continual
    data["merge"].update(merge)
    data["presets"]["quick"] = {"training": {"total_steps": 384, "seeds_per_task": 1},
                                "ppo": {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 1},
                                "evaluation": {"episodes": 4, "cross_episodes": 4, "num_envs": 4,
                                               "retention_episodes": 4}}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_suite(path, "quick")


def train_grid(suite, store):
    runs = {}
    for job in suite.grid():
        run = training_run(store, suite, job, "fast")
        train_run(run, job.task, suite.ppo, suite.training.total_steps, job.init_seed, job.level_seed,
                  snapshot_every=suite.merge.snapshot_every if job.task_key != "super" else None)
        runs[job.model_name] = run
    return runs


def weights(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("layout_name", ["shared", "separate"])
def test_rebasin_of_a_permuted_copy_gives_the_policy_back_value_head_included(layout_name):
    a = make_actor_critic(layout_name, 0)
    spec = PermutationSpec.build(**actor_critic_permutation_axes(layout_name))
    b = make_actor_critic(layout_name)
    b.load_state_dict(apply_permutation(spec, random_permutation(spec, 3), a.state_dict()))
    obs = torch.randint(0, 256, (5, 64, 64, 3), dtype=torch.uint8)
    for out_a, out_b in zip(a(obs), b(obs)):
        torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-5)  # the permuted copy is the same function
    assert not torch.equal(a.state_dict()["actor.fc.weight"], b.state_dict()["actor.fc.weight"])
    merged = merge_policies(ContinualRow("federated", "rebasin", 0.5, 1), a, b)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(merged[k], v, atol=1e-6, rtol=1e-6)
    averaged = merge_policies(ContinualRow("federated", "average", 0.5, 1), a, b)
    assert (averaged["value_net.weight" if layout_name == "shared" else "critic.head.weight"]
            - a.state_dict()["value_net.weight" if layout_name == "shared" else "critic.head.weight"]).abs().max() > 1e-3


def test_federated_with_alpha_one_is_model_a_trained_alone(tmp_path):
    """α = 1 replaces both learners by A after every update, so A trains as it would alone and
    the result (B's policy, as the thesis code saves it) is A's after the last update."""
    row = ContinualRow("federated", "average", 1.0, 1)
    suite = tiny_suite(tmp_path, [])
    _, a, b = suite.merge_pairs()[0]
    run = continual_run(RunStore(tmp_path / "store"), suite, "same_init", row, a, b)
    assert train_continual(run, suite, row, a, b)
    alone = train_fast(a.task, suite.ppo, suite.training.total_steps, a.init_seed, a.level_seed)
    assert_same(run.load_model(layout.ACTOR)[0].state_dict(), alone.actor.state_dict())
    assert run.has(f"curve-{a.model_name}") and run.has(f"curve-{b.model_name}")
    assert not train_continual(run, suite, row, a, b)  # finished: nothing trained


def test_checkpoint_merging_with_alpha_zero_hands_over_the_partners_snapshot(tmp_path):
    """α = 0 replaces the learner by the partner's snapshot of the same update; merging once,
    after the last update, leaves exactly the partner's final policy. Direction ba makes the
    second sub-task's model the learner and the first's the partner."""
    suite = tiny_suite(tmp_path, [{"protocol": "checkpoint", "method": "average", "alpha": 0.0, "every": 3,
                                   "directions": ["ba"]}])
    store = RunStore(tmp_path / "store")
    runs = train_grid(suite, store)
    round_name, row, a, b = continual_jobs(suite)[0]
    partner = runs[a.model_name]
    assert partner.has(snapshot_artifact(3)) and not partner.has(snapshot_artifact(2))  # every 3 updates
    assert not runs["super00"].has(snapshot_artifact(3))  # the super-task models merge with nothing
    run = continual_run(store, suite, round_name, row, a, b)
    train_continual(run, suite, row, a, b, partner)
    assert_same(run.load_model(layout.ACTOR)[0].state_dict(), partner.load_model(layout.ACTOR)[0].state_dict())


def test_checkpoint_merging_needs_the_partners_snapshots(tmp_path):
    suite = tiny_suite(tmp_path, [{"protocol": "checkpoint", "method": "average", "every": 1}])
    store = RunStore(tmp_path / "store")
    round_name, row, a, b = continual_jobs(suite)[0]
    partner = store.run("elsewhere", spec={})  # a partner trained without snapshots
    with pytest.raises(Exception, match="no policy snapshot after 1 updates"):
        train_continual(continual_run(store, suite, round_name, row, a, b), suite, row, a, b, partner)


@pytest.mark.parametrize("entry, message", [
    ({"protocol": "gossip", "method": "average", "every": 1}, "allowed: \\['federated', 'checkpoint'\\]"),
    ({"protocol": "federated", "method": "fisher", "every": 1}, "allowed: \\['average', 'rebasin'\\]"),
    ({"protocol": "federated", "method": "average", "every": 0}, "every"),
    ({"protocol": "federated", "method": "average"}, "every"),
    ({"protocol": "federated", "method": "average", "every": 1, "directions": ["ba"]}, "treats A and B alike"),
    ({"protocol": "checkpoint", "method": "average", "every": 1, "rounds": ["nope"]}, "rounds\\[0\\] is 'nope'; allowed"),
    ({"protocol": "checkpoint", "method": "average", "every": 1, "alpah": 0.5}, "alpah"),
])
def test_bad_continual_rows_are_refused_by_name(tmp_path, entry, message):
    with pytest.raises(ConfigError, match=message):
        tiny_suite(tmp_path, [entry])


def test_snapshot_interval_serves_every_checkpoint_row(tmp_path):
    suite = tiny_suite(tmp_path, [{"protocol": "checkpoint", "method": "average", "every": [4, 6]},
                                  {"protocol": "federated", "method": "rebasin", "every": 5}])
    assert suite.merge.snapshot_every == 2
    assert [r.row_id for r in suite.merge.continual] == [
        "checkpoint-average-a0.5-m4-ab", "checkpoint-average-a0.5-m6-ab", "federated-rebasin-a0.5-m5-ab"]
    assert tiny_suite(tmp_path, [{"protocol": "federated", "method": "average", "every": 5}]).merge.snapshot_every is None
