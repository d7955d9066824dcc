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
