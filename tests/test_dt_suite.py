"""The suite file: presets merge over the paper's settings; errors name file, key and the
allowed values. The experiments' weight surgery: layer order, merge direction, sizes,
attention perturbations."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from crl_merge.dt.surgery import (layer_units, merge_into, merged_models, multitask_size, perturb_attention,
                                  shared_fraction)
from crl_merge.dt.suite import load_suite
from envs.schema import ConfigError
from crl_merge.models import DecisionTransformer, DTConfig

SUITE = Path(__file__).resolve().parent.parent / "benchmarks" / "mujoco_dt.yaml"


def test_presets_override_the_papers_settings():
    paper = load_suite(SUITE, "paper")
    assert paper.train_config().steps == 100_000 and paper.config["evaluation"]["episodes"] == 50
    assert paper.dt_config(["hopper"]).n_embd == 128 and paper.dt_config(["hopper"]).context == 20
    # the paper's code by default (issue 14)
    assert (paper.dt_config(["hopper"]).embed_ln, paper.dt_config(["hopper"]).init) == ("before_timestep", "paper")
    assert (paper.train_config().keep, paper.train_config().evaluation_steps()) == ("best", list(range(10_000, 100_001, 10_000)))
    assert paper.train_config(finetune=True).eval_episodes == 50 and paper.train_config().init_reg == 0.0
    multitask = paper.experiment("multitask")
    assert (multitask["fisher"], multitask["fisher_normalise"], multitask["cotrained_finetune"]) == ("mse_batches", True, "anchored")
    quick = load_suite(SUITE, "quick")
    assert quick.train_config().weight_decay == 1e-4  # untouched keys keep the paper's value
    assert quick.train_config(finetune=True).steps == quick.config["finetune"]["steps"]
    assert quick.config["experiments"]["single_layer"]["p"] == [0.5, 1.0]
    assert paper.datasets_needed() == {(e, k) for e in ("hopper", "halfcheetah", "walker2d")
                                       for k in ("expert", "medium", "medium-expert")}


def _write(tmp_path, mutate) -> Path:
    raw = yaml.safe_load(SUITE.read_text())
    mutate(raw)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["envs"].append("ant"), r"envs\[3\] is 'ant'; allowed: \['hopper', 'halfcheetah', 'walker2d'\]"),
    (lambda r: r["train"].update(stepz=1), r"train: unknown key\(s\) \['stepz'\]; valid keys: \['batch_size'"),
    (lambda r: r["model"].pop("context"), r"model: missing key\(s\) \['context'\]"),
    (lambda r: r["experiments"]["single_layer"].update(dataset="random"),
     r"experiments.single_layer.dataset is 'random'; allowed: \['expert', 'medium', 'medium-replay', 'medium-expert'\]"),
    (lambda r: r["experiments"]["multitask"].update(inits=["chibit"]), r"inits\[0\] is 'chibit'; allowed"),
    (lambda r: r["presets"]["quick"]["experiments"]["attention_interpolation"].update(lambdas=[0.5, 2]),
     r"lambdas\[1\] = 2.0 is out of range: allowed 0.0 ≤ value ≤ 1.0"),
    (lambda r: r["train"].update(steps="many"), r"train.steps must be an integer, got 'many'"),
    (lambda r: r["model"].update(embed_ln="sideways"),
     r"model.embed_ln is 'sideways'; allowed: \['before_timestep', 'after_timestep'\]"),
    (lambda r: r["model"].update(init="xavier"), r"model.init is 'xavier'; allowed: \['paper', 'normal'\]"),
    (lambda r: r["train"].update(keep="last"), r"train.keep is 'last'; allowed: \['best', 'final'\]"),
    (lambda r: r["experiments"]["multitask"].update(fisher="exact"),
     r"multitask.fisher is 'exact'; allowed: \['mse_batches', 'sampled_gaussian'\]"),
    (lambda r: r["experiments"]["multitask"].update(cotrained_finetune="loose"),
     r"multitask.cotrained_finetune is 'loose'; allowed: \['anchored', 'free'\]"),
    (lambda r: r["seeds"].update(init=[0]), r"seeds.init needs one seed per env"),
    (lambda r: r["presets"]["quick"].update(train={"batch_size": 0}), r"train.batch_size = 0 is out of range: allowed value ≥ 1"),
    (lambda r: r["datasets"].update(policies="envs/mujoco/policies"), r"moved from envs/mujoco/policies to crl_merge/dt"),
    (lambda r: r["presets"].update(huge={}), r"presets: unknown preset\(s\) \['huge'\]; valid presets: \['smoke', 'quick', 'paper'\]"),
])
def test_errors_name_file_key_and_allowed_values(tmp_path, mutate, message):
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError, match=message) as err:
        load_suite(path, "quick")
    assert str(path) in str(err.value)


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown preset 'fast'; allowed: \['smoke', 'quick', 'paper'\]"):
        load_suite(SUITE, "fast")
    with pytest.raises(ConfigError, match="none.yaml does not exist"):
        load_suite(tmp_path / "none.yaml", "quick")


def _dt(env: str, dims, seed: int) -> dict:
    torch.manual_seed(seed)
    return DecisionTransformer(DTConfig(envs={env: dims})).state_dict()


def test_layer_units_cover_the_transformer_once():
    sd = _dt("hopper", (11, 3), 0)
    units = layer_units(3)
    assert [u for u, _ in units][:5] == ["0.ln_1", "0.attn", "0.ln_2", "0.mlp", "1.ln_1"] and units[-1][0] == "ln_f"
    import re

    covered = [n for n in sd if any(re.search(r, n) for _, r in units)]
    assert sorted(covered) == sorted(n for n in sd if n.startswith("transformer."))
    assert all(sum(bool(re.search(r, n)) for _, r in units) == 1 for n in covered)


def test_merge_into_moves_only_the_unit_towards_the_source():
    target, source = _dt("hopper", (11, 3), 0), _dt("walker2d", (17, 6), 1)
    merged = merge_into(target, source, layer_units(3)[1][1], p=0.5)
    q = "transformer.blocks.0.attn.q.weight"
    assert torch.allclose(merged[q], (target[q] + source[q]) / 2)
    assert torch.equal(merged["transformer.blocks.0.mlp.fc.weight"], target["transformer.blocks.0.mlp.fc.weight"])
    assert torch.equal(merge_into(target, source, layer_units(3)[1][1], p=1.0)[q], source[q])
    assert all(k.startswith("io.hopper") for k in merged if k.startswith("io."))


def test_attention_share_and_multitask_sizes_match_the_paper():
    sd = _dt("hopper", (11, 3), 0)
    assert sum(v.numel() for k, v in sd.items() if k.startswith("transformer.")) == 595_072
    assert shared_fraction(sd, ["attention"]) == pytest.approx(0.333, abs=0.001)  # paper: 33.18%
    assert multitask_size(sd, ["attention"], 2) == pytest.approx(2 - 0.333, abs=0.001)  # paper: 166.82%
    assert multitask_size(sd, ["attention", "mlp"], 2) == pytest.approx(1.003, abs=0.001)  # paper: 100.26%
    assert multitask_size(sd, ["transformer"], 3) == 1.0 and multitask_size(sd, None, 2) == 2.0


def test_merged_models_share_one_transformer_subset():
    models = {"hopper": _dt("hopper", (11, 3), 0), "walker2d": _dt("walker2d", (17, 6), 1),
              "halfcheetah": _dt("halfcheetah", (17, 6), 2)}
    merged = merged_models(models, ["attention", "mlp"])
    k = "transformer.blocks.2.mlp.proj.weight"
    assert torch.equal(merged["hopper"][k], merged["walker2d"][k])
    assert torch.allclose(merged["hopper"][k], sum(m[k] for m in models.values()) / 3, atol=1e-7)
    ln = "transformer.blocks.0.ln_1.weight"
    assert all(torch.equal(merged[e][ln], models[e][ln]) for e in models)
    fishers = {e: {n: torch.ones_like(v) * (10.0 if e == "hopper" else 1.0) for n, v in m.items()}
               for e, m in models.items()}
    weighted = merged_models(models, ["mlp"], fishers)
    assert torch.allclose(weighted["walker2d"][k], (10 * models["hopper"][k] + models["walker2d"][k]
                                                    + models["halfcheetah"][k]) / 12, atol=1e-6)


def test_attention_perturbations():
    sd = _dt("hopper", (11, 3), 0)
    removed = perturb_attention(sd, "removed")
    assert (removed["transformer.blocks.1.attn.o.weight"] == 0).all()
    assert torch.equal(removed["transformer.blocks.1.attn.q.weight"], sd["transformer.blocks.1.attn.q.weight"])
    identity = perturb_attention(sd, "identity_matrix")
    assert torch.equal(identity["transformer.blocks.0.attn.v.weight"], torch.eye(128))
    assert (identity["transformer.blocks.0.attn.v.bias"] == 0).all()
    ones = perturb_attention(sd, "identity")
    assert (ones["transformer.blocks.2.attn.o.weight"] == 1).all() and (ones["transformer.blocks.2.attn.q.bias"] == 0).all()
    a, b = perturb_attention(sd, "random", seed=1), perturb_attention(sd, "random", seed=1)
    assert torch.equal(a["transformer.blocks.2.attn.k.weight"], b["transformer.blocks.2.attn.k.weight"])
    assert not torch.equal(a["transformer.blocks.2.attn.k.weight"], sd["transformer.blocks.2.attn.k.weight"])
    assert torch.equal(a["transformer.blocks.2.mlp.fc.weight"], sd["transformer.blocks.2.mlp.fc.weight"])
    # removing attention is removing the sublayer: the block computes x + mlp(ln_2(x))
    torch.manual_seed(0)
    model = DecisionTransformer(DTConfig(envs={"hopper": (11, 3)})).eval()
    model.load_state_dict(removed)
    x = torch.randn(2, 6, 128)
    block = model.transformer.blocks[0]
    assert torch.allclose(block(x), x + block.mlp(block.ln_2(x)), atol=1e-6)
    with pytest.raises(ValueError, match="known: \\['random', 'identity', 'identity_matrix', 'removed'\\]"):
        perturb_attention(sd, "zero")


def test_one_seed_gives_one_transformer_whatever_the_envs():
    """Shared initialisation (Table 3's `shared_seed`): DTs for envs with different state and
    action sizes start from the same trunk when built from the same seed."""
    trunks = []
    for envs in ({"hopper": (11, 3)}, {"halfcheetah": (17, 6)}, {"hopper": (11, 3), "walker2d": (17, 6)}):
        torch.manual_seed(0)
        model = DecisionTransformer(DTConfig(envs=envs, n_layer=2, n_embd=32))
        trunks.append(model.transformer.state_dict())
    for trunk in trunks[1:]:
        assert all(torch.equal(trunk[k], trunks[0][k]) for k in trunk)
    torch.manual_seed(1)
    other = DecisionTransformer(DTConfig(envs={"hopper": (11, 3)}, n_layer=2, n_embd=32)).transformer.state_dict()
    assert not all(torch.equal(other[k], trunks[0][k]) for k in other)


def test_the_suite_and_its_policies_are_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = load_suite("benchmarks/mujoco_dt.yaml", "smoke")
    assert suite.path == SUITE
    policies = Path(suite.config["datasets"]["policies"])
    assert policies.is_absolute() and (policies / "hopper" / "policies.json").is_file()
