"""Checkpoints load only what was saved, completely and unaltered, and never unpickle;
the run store records finished artifacts and refuses to mix settings."""

import pickle

import pytest
import torch

from crl_merge.checkpoint import CheckpointError, load_model, save_model
from crl_merge.models import DecisionTransformer, DTConfig, make_actor
from crl_merge.store import RunStore, StoreError


def frames(n=4):
    return torch.randint(0, 256, (n, 64, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_round_trip_keeps_the_function_and_the_metadata(tmp_path):
    actor = make_actor(3)
    save_model(tmp_path / "actor", actor, task="starpilot/dodge", steps=123)
    loaded, meta = load_model(tmp_path / "actor.safetensors")
    assert torch.equal(loaded(frames()), actor(frames()))
    assert meta["task"] == "starpilot/dodge" and meta["architecture"] == {"name": "nature_cnn", "out_dim": 15}
    dt = DecisionTransformer(DTConfig(envs={"hopper": (11, 3)}))
    save_model(tmp_path / "dt", dt)
    assert load_model(tmp_path / "dt")[0].cfg == dt.cfg


def test_same_init_seed_same_weights():
    a, b, c = make_actor(1), make_actor(1), make_actor(2)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_truncated_tampered_and_pickled_files_are_reported_by_path(tmp_path):
    save_model(tmp_path / "actor", make_actor(0))
    weights = tmp_path / "actor.safetensors"
    data = weights.read_bytes()

    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"{weights}: truncated"):
        load_model(weights)

    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CheckpointError, match=f"{weights}: contents altered"):
        load_model(weights)

    # A pickle disguised as the weight file, with a sidecar rewritten to match, is still refused.
    import hashlib, json
    payload = pickle.dumps({"conv1.weight": torch.zeros(1)})
    weights.write_bytes(payload)
    sidecar = json.loads((tmp_path / "actor.json").read_text())
    sidecar["weights"].update(bytes=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    (tmp_path / "actor.json").write_text(json.dumps(sidecar))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(weights)

    (tmp_path / "actor.json").unlink()
    with pytest.raises(CheckpointError, match="sidecar missing"):
        load_model(weights)


def test_store_records_artifacts_and_refuses_other_settings(tmp_path):
    store = RunStore(tmp_path)
    run = store.run("suite", "quick", "train", "dodge", "00", spec={"lr": 5e-4, "ppo": {"gamma": 0.999}})
    assert not run.has("actor")
    run.save_model("actor", make_actor(0))
    run.save_json("eval-dodge", {"mean_return": 1.0})
    again = store.run("suite", "quick", "train", "dodge", "00", spec={"lr": 5e-4, "ppo": {"gamma": 0.999}})
    assert again.has("actor") and again.load_json("eval-dodge") == {"mean_return": 1.0}
    with pytest.raises(StoreError, match="ppo.gamma: 0.999 in the store, 0.99 now"):
        store.run("suite", "quick", "train", "dodge", "00", spec={"lr": 5e-4, "ppo": {"gamma": 0.99}})
    (run.path / "actor.safetensors").unlink()  # a recorded artifact whose file vanished is not finished
    assert not store.run("suite", "quick", "train", "dodge", "00", spec={"lr": 5e-4, "ppo": {"gamma": 0.999}}).has("actor")
    with pytest.raises(StoreError, match="run name part"):
        store.run("../escape", spec={})
