"""The Decision Transformer track as the paper's code runs it (issue 14): each choice where
our first reading differed from ``daniellawson9999/merging-decision-transformers``, pinned
in its code-faithful default and, where kept, in our named alternative."""

from __future__ import annotations

import pytest
import torch

from crl_merge.models import DecisionTransformer, DTConfig


def _inputs(b=3, k=5, state_dim=11, act_dim=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, k, state_dim, generator=gen), torch.rand(b, k, act_dim, generator=gen) * 2 - 1,
            torch.rand(b, k, 1, generator=gen) * 3, torch.randint(0, 1000, (b, k), generator=gen))


def test_paper_init_keeps_torch_defaults_outside_the_blocks_and_scales_the_residual_projections():
    torch.manual_seed(0)
    sd = DecisionTransformer(DTConfig(envs={"hopper": (11, 3)})).state_dict()
    b = "transformer.blocks.1"
    assert sd[f"{b}.attn.q.weight"].std().item() == pytest.approx(0.02, rel=0.03)
    for proj in ("attn.o", "mlp.proj"):  # GPT-2's c_proj: 0.02 / sqrt(2 * 3 layers)
        assert sd[f"{b}.{proj}.weight"].std().item() == pytest.approx(0.02 / 6 ** 0.5, rel=0.03)
        assert (sd[f"{b}.{proj}.bias"] == 0).all()
    assert sd[f"{b}.mlp.fc.weight"].std().item() == pytest.approx(0.02, rel=0.03)
    # PyTorch's defaults: Linear weights and biases U(±1/sqrt(fan_in)), Embedding N(0, 1)
    bound = 1 / 11 ** 0.5
    state = sd["io.hopper.embed_state.weight"]
    assert state.abs().max().item() <= bound and state.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.1)
    assert sd["io.hopper.embed_state.bias"].abs().max().item() > 0.05
    assert sd["io.hopper.embed_timestep.weight"].std().item() == pytest.approx(1.0, rel=0.03)
    head = sd["io.hopper.predict_action.weight"]
    assert head.abs().max().item() <= 1 / 128 ** 0.5 and head.std().item() > 0.03

    torch.manual_seed(0)
    normal = DecisionTransformer(DTConfig(envs={"hopper": (11, 3)}, init="normal")).state_dict()
    for name in (f"{b}.attn.o.weight", "io.hopper.embed_timestep.weight", "io.hopper.embed_state.weight"):
        assert normal[name].std().item() == pytest.approx(0.02, rel=0.1)
    assert (normal["io.hopper.embed_state.bias"] == 0).all()
    with pytest.raises(ValueError, match=r"init must be one of \['normal', 'paper'\], got 'xavier'"):
        DTConfig(init="xavier")


@pytest.mark.parametrize("order", ["before_timestep", "after_timestep"])
def test_embedding_layer_norm_order(order):
    torch.manual_seed(0)
    model = DecisionTransformer(DTConfig(envs={"hopper": (11, 3)}, n_layer=1, n_embd=32, embed_ln=order)).eval()
    states, actions, rtg, timesteps = _inputs()
    io = model.io["hopper"]
    tokens = torch.stack([io.embed_return(rtg), io.embed_state(states), io.embed_action(actions)], dim=2)
    time = io.embed_timestep(timesteps)[:, :, None]
    tokens = io.embed_ln(tokens) + time if order == "before_timestep" else io.embed_ln(tokens + time)
    x = model.transformer(tokens.reshape(3, 15, 32)).reshape(3, 5, 3, 32)
    expected = torch.tanh(io.predict_action(x[:, :, 1]))
    with torch.no_grad():
        assert torch.allclose(model("hopper", states, actions, rtg, timesteps), expected, atol=1e-6)
        other = DecisionTransformer(DTConfig(envs={"hopper": (11, 3)}, n_layer=1, n_embd=32,
                                             embed_ln=({"before_timestep", "after_timestep"} - {order}).pop())).eval()
        other.load_state_dict(model.state_dict())
        assert (other("hopper", states, actions, rtg, timesteps) - expected).abs().max() > 1e-3


def test_all_ones_attention_acts_as_removed_attention_and_identity_matrices_do_not():
    """The paper's identity (every attention weight 1, biases 0) adds a constant across
    channels, which each following LayerNorm removes: the same actions as no attention."""
    from crl_merge.dt.surgery import perturb_attention

    torch.manual_seed(0)
    model = DecisionTransformer(DTConfig(envs={"hopper": (11, 3)}, n_layer=2, n_embd=32)).eval()
    gen = torch.Generator().manual_seed(1)
    sd = {k: (v + 0.3 * torch.randn(v.shape, generator=gen)) if ".ln_" in k or "ln_f" in k else v
          for k, v in model.state_dict().items()}  # LayerNorms as a trained model's, not 1 and 0
    states, actions, rtg, timesteps = _inputs(k=8)
    mask = torch.ones(3, 8)
    mask[0, :3] = 0  # a left-padded window

    def act(weights):
        model.load_state_dict(weights)
        with torch.no_grad():
            return model("hopper", states, actions, rtg, timesteps, mask)

    removed, ones = act(perturb_attention(sd, "removed")), act(perturb_attention(sd, "identity"))
    assert (ones - removed).abs().max().item() < 1e-4
    assert (act(perturb_attention(sd, "identity_matrix")) - removed).abs().max().item() > 1e-2
    assert (act(sd) - removed).abs().max().item() > 1e-2


def _dt(env, dims, seed, **kw):
    torch.manual_seed(seed)
    return DecisionTransformer(DTConfig(envs={env: dims}, n_layer=1, n_embd=32, **kw))


def test_normalised_fisher_merge_of_fishers_a_constant_apart_is_the_plain_average():
    from crl_merge.dt.experiments.multitask import FISHER_TOTAL_OVER
    from crl_merge.dt.surgery import merged_models
    from crl_merge.merge import normalise_fisher

    models = {"hopper": _dt("hopper", (11, 3), 0).state_dict(), "walker2d": _dt("walker2d", (17, 6), 1).state_dict()}
    gen = torch.Generator().manual_seed(2)
    base = {k: torch.rand(v.shape, generator=gen) + 0.01 for k, v in models["walker2d"].items()}
    fishers = {"hopper": {k: 1e-3 * base.get(k, torch.ones_like(v)) for k, v in models["hopper"].items()},
               "walker2d": {k: 40.0 * v for k, v in base.items()}}
    subset = ["attention", "mlp"]
    normalised = {e: normalise_fisher(f, FISHER_TOTAL_OVER) for e, f in fishers.items()}
    merged, average = merged_models(models, subset, normalised), merged_models(models, subset)
    names = [k for k in merged["hopper"] if ".attn." in k or ".mlp." in k]
    assert names and all(torch.allclose(merged["hopper"][k], average["hopper"][k], atol=1e-6) for k in names)
    raw = merged_models(models, subset, fishers)  # without normalising, the larger Fisher wins
    k = "transformer.blocks.0.mlp.fc.weight"
    assert (raw["hopper"][k] - models["walker2d"][k]).abs().max() < 1e-4 < (average["hopper"][k] - models["walker2d"][k]).abs().max()


def test_mse_fisher_is_the_squared_batch_mse_gradient_with_dropout_on():
    from crl_merge.merge import dt_mse_fisher

    model = _dt("hopper", (11, 3), 0)
    batches = []
    for seed in (0, 1):
        states, actions, rtg, timesteps = _inputs(b=4, k=6, seed=seed)
        mask = torch.ones(4, 6)
        mask[1, :2] = 0
        batches.append((states, actions, rtg, timesteps, mask))
    fisher = dt_mse_fisher(model, "hopper", batches, seed=7)
    expected = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        for states, actions, rtg, timesteps, mask in batches:
            model.zero_grad()
            err = (model("hopper", states, actions, rtg, timesteps, mask) - actions).square()
            loss = (err * mask[..., None]).sum() / (mask.sum() * 3)
            loss.backward()
            for k, p in model.named_parameters():
                expected[k] += p.grad.square()
    name = "transformer.blocks.0.attn.v.weight"
    for k in expected:
        assert torch.allclose(fisher[k], expected[k] / 44, rtol=1e-4, atol=1e-12), k
    # dropout on matters: the same weights without dropout give another estimate
    no_dropout = dt_mse_fisher(_dt("hopper", (11, 3), 0, dropout=0.0), "hopper", batches, seed=7)
    assert not torch.allclose(no_dropout[name], fisher[name], rtol=1e-2)


def _toy_sampler():
    from crl_merge.dt.data import SequenceSampler
    from tests.test_dt_training import toy_dataset

    return SequenceSampler(toy_dataset(), context=8)


def _rollouts(model):
    """A real evaluation: two hopper episodes of at most 30 steps, conditioned on 3,600."""
    import numpy as np

    from crl_merge.dt.evaluate import evaluate
    from envs.mujoco.tasks import get_task

    result = evaluate(model, "hopper", get_task("hopper"), np.zeros(11, np.float32), np.ones(11, np.float32),
                      episodes=2, target_return=3600, seed=3, max_steps=30)
    return {"metric": float(result.returns.mean())}


def _hopper(seed=0):
    torch.manual_seed(seed)
    return DecisionTransformer(DTConfig(envs={"hopper": (11, 3)}, n_layer=1, n_embd=32, context=8))


def test_the_kept_checkpoint_is_the_best_evaluation_and_survives_a_resume(tmp_path):
    from crl_merge.dt.train import TrainConfig, train
    from crl_merge.store import RunStore

    sampler = _toy_sampler()
    config = TrainConfig(steps=12, batch_size=8, learning_rate=3e-3, warmup_steps=1, checkpoint_every=3, evaluations=4)
    assert config.evaluation_steps() == [3, 6, 9, 12]
    whole_run = RunStore(tmp_path / "a").run("t", spec={})
    whole = train(whole_run, _hopper(), {"hopper": sampler}, config, seed=1, evaluate=_rollouts)
    meta = whole_run.load_model("model")[1]
    returns = [e["metric"] for e in meta["evaluations"]]
    assert [e["step"] for e in meta["evaluations"]] == [3, 6, 9, 12]
    best = 3 * (returns.index(max(returns)) + 1)
    assert meta["kept_step"] == best != 12  # this seed's best is not its last evaluation
    # the kept weights are those after `best` steps: the same run stopped there
    until_best = train(RunStore(tmp_path / "b").run("t", spec={}), _hopper(), {"hopper": sampler},
                       TrainConfig(**{**vars(config), "steps": best, "evaluations": 0, "keep": "final"}), seed=1)
    assert all(torch.equal(v, until_best.state_dict()[k]) for k, v in whole.state_dict().items())
    # killed after an evaluation, resumed: the same evaluations and the same kept weights
    run = RunStore(tmp_path / "c").run("t", spec={})
    assert train(run, _hopper(), {"hopper": sampler}, config, seed=1, evaluate=_rollouts, stop=lambda s: s == 7) is None
    resumed = train(run, _hopper(seed=5), {"hopper": sampler}, config, seed=1, evaluate=_rollouts)
    assert run.load_model("model")[1]["evaluations"] == meta["evaluations"]
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in whole.state_dict().items())
    final = train(RunStore(tmp_path / "d").run("t", spec={}), _hopper(), {"hopper": sampler},
                  TrainConfig(**{**vars(config), "keep": "final"}), seed=1, evaluate=_rollouts)
    assert not torch.equal(final.state_dict()["transformer.blocks.0.mlp.fc.weight"],
                           whole.state_dict()["transformer.blocks.0.mlp.fc.weight"])
    with pytest.raises(ValueError, match="4 evaluations during training need an evaluate function"):
        train(RunStore(tmp_path / "e").run("t", spec={}), _hopper(), {"hopper": sampler}, config, seed=1)
    with pytest.raises(ValueError, match=r"keep is 'last'; allowed: \['best', 'final'\]"):
        TrainConfig(keep="last")


def test_anchored_finetune_pulls_the_blocks_to_the_start_and_leaves_ln_f_and_timesteps_alone(tmp_path):
    from crl_merge.dt.train import TrainConfig, anchor_loss, train
    from crl_merge.dt.workbench import ANCHORED_FROZEN
    from crl_merge.store import RunStore

    start = _hopper()
    before = {k: v.clone() for k, v in start.state_dict().items()}
    moved = _hopper()
    with torch.no_grad():
        moved.transformer.blocks[0].mlp.fc.weight.add_(0.5)
        moved.transformer.ln_f.weight.add_(1.0)  # not a block: outside the pull
    fc = moved.transformer.blocks[0].mlp.fc.weight
    assert anchor_loss(moved, before).item() == pytest.approx(0.5 * fc.numel() ** 0.5, rel=1e-5)

    def tune(init_reg, where, stop=None, seed=0):
        config = TrainConfig(steps=30, batch_size=8, learning_rate=1e-3, warmup_steps=1, checkpoint_every=5,
                             evaluations=0, init_reg=init_reg)
        model = train(RunStore(tmp_path / where).run("t", spec={}), _hopper(seed), {"hopper": _toy_sampler()}, config,
                      seed=0, frozen=list(ANCHORED_FROZEN), stop=stop)
        return None if model is None else model.state_dict()

    free, pulled = tune(0.0, "free"), tune(10.0, "pulled")
    # killed and resumed, the pull is still to the weights the run began from
    assert tune(10.0, "resumed", stop=lambda step: step == 12) is None
    resumed = tune(10.0, "resumed", seed=9)
    assert all(torch.equal(resumed[k], pulled[k]) for k in pulled)
    for tuned in (free, pulled):
        frozen = [k for k in tuned if k.startswith(("transformer.ln_f.", "io.hopper.embed_timestep."))]
        assert len(frozen) == 3 and all(torch.equal(tuned[k], before[k]) for k in frozen)
        assert not torch.equal(tuned["io.hopper.embed_state.weight"], before["io.hopper.embed_state.weight"])
    distance = lambda sd: sum((sd[k] - before[k]).norm() for k in sd if k.startswith("transformer.blocks."))  # noqa: E731
    assert distance(pulled) < 0.5 * distance(free)
