"""``crl-merge merge``: merges checkpoints read with their sidecars, writes the merged model
with its provenance, and refuses bad input with a clear error."""

import argparse
import json

import pytest
import torch
from merge_helpers import random_actor, random_dt

from crl_merge.checkpoint import CheckpointError, load_model, save_model
from crl_merge.merge import apply_permutation, random_permutation, spec_for
from crl_merge.merge.cli import add_commands


def run(*argv):
    parser = argparse.ArgumentParser(prog="crl-merge")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["merge", *map(str, argv)])
    return args.func(args)


@pytest.fixture
def checkpoints(tmp_path):
    """A: an actor; B: a permuted copy of A; C: another actor; D: a Decision Transformer;
    F: a Fruitbot actor."""
    actor = random_actor(0)
    spec = spec_for(actor)
    copy = random_actor(0)
    copy.load_state_dict(apply_permutation(spec, random_permutation(spec, 1), actor.state_dict()))
    paths = {name: tmp_path / f"{name}.safetensors" for name in "ABCDF"}
    tasks = {"D": "hopper", "F": "fruitbot/fruits"}
    for name, model in zip("ABCDF", (actor, copy, random_actor(2), random_dt(0), random_actor(3))):
        save_model(paths[name], model, task=tasks.get(name, "starpilot/dodge"))
    return paths


def test_rebasin_of_a_permuted_copy_writes_back_the_original_with_provenance(checkpoints, tmp_path, capsys):
    out = tmp_path / "merged.safetensors"
    assert run("rebasin", checkpoints["A"], checkpoints["B"], "--alpha", "0.25", "--seed", "3", "-o", out) == 0
    merged, meta = load_model(out)
    original, _ = load_model(checkpoints["A"])
    torch.testing.assert_close(merged.state_dict(), original.state_dict(), atol=1e-6, rtol=1e-6)
    provenance = meta["merge"]
    assert provenance["method"] == "rebasin" and provenance["alpha"] == 0.25 and provenance["seed"] == 3
    assert [s["path"] for s in provenance["sources"]] == [str(checkpoints["A"]), str(checkpoints["B"])]
    sidecar_a = json.loads(checkpoints["A"].with_suffix(".json").read_text())
    assert provenance["sources"][0]["sha256"] == sidecar_a["weights"]["sha256"]
    assert provenance["objective"][-1] > provenance["objective"][0]
    assert provenance["l2_after"] < 1e-6 < provenance["l2_before"]
    assert meta["architecture"] == sidecar_a["architecture"]
    assert "weight matching: objective" in capsys.readouterr().out


@pytest.mark.parametrize("method, extra", [
    ("average", []), ("average", ["--alpha", "0.5"]), ("task_arithmetic", ["--base", "C", "--scale", "0.5"]),
    ("ties", ["--base", "C", "--density", "1", "--scale", "0.5"]),
    ("dare", ["--base", "C", "--density", "1", "--scale", "0.5"]),
    ("breadcrumbs", ["--base", "C", "--density", "1", "--outliers", "0", "--scale", "0.5"]),
])
def test_methods_on_two_checkpoints(checkpoints, tmp_path, method, extra):
    """With these settings every method gives the plain mean of A and C (TIES, DARE and
    Breadcrumbs keeping everything, C as the base: one task vector, A − C, half of it added to C)."""
    extra = [str(checkpoints[x]) if x in checkpoints else x for x in extra]
    second = "C" if method == "average" else None
    sources = [checkpoints["A"]] + ([checkpoints[second]] if second else [])
    out = tmp_path / f"{method}.safetensors"
    run(method, *sources, *extra, "-o", out)
    merged, meta = load_model(out)
    a, _ = load_model(checkpoints["A"])
    c, _ = load_model(checkpoints["C"])
    for n, value in merged.state_dict().items():
        torch.testing.assert_close(value, (a.state_dict()[n] + c.state_dict()[n]) / 2, atol=1e-6, rtol=1e-5)
    assert meta["merge"]["method"] == method


def test_a_subset_is_recorded_and_respected(checkpoints, tmp_path):
    out = tmp_path / "conv3.safetensors"
    run("average", checkpoints["A"], checkpoints["C"], "--subset", "conv3", "--alpha", "0", "-o", out)
    merged, meta = load_model(out)
    a, _ = load_model(checkpoints["A"])
    c, _ = load_model(checkpoints["C"])
    assert torch.equal(merged.conv3.weight, c.conv3.weight) and torch.equal(merged.fc.weight, a.fc.weight)
    assert meta["merge"]["subset"] == ["conv3"]


@pytest.mark.parametrize("argv, error, message", [
    (["average", "A", "C", "--alpha", "1.5"], ValueError, r"alpha must be a number in \[0, 1\], got 1.5"),
    (["average", "A", "D"], ValueError, "different architectures: .*A.safetensors is nature_cnn"),
    (["rebasin", "A", "B", "C"], ValueError, "exactly two models"),
    (["average", "A", "B", "C", "--alpha", "0.3"], ValueError, "alpha weighs the first of two models"),
    (["ties", "A", "C", "--alpha", "0.3", "--base", "B"], ValueError, "alpha applies to"),
    (["task_arithmetic", "A"], ValueError, "a base model is needed"),
    (["average", "A", "C", "--subset", "attention"], ValueError, "'attention' matches no parameter"),
    (["average", "A", "missing"], CheckpointError, "sidecar missing"),
    (["average", "A", "F"], ValueError, "different games"),
])
def test_bad_input_is_refused_with_a_clear_error(checkpoints, tmp_path, argv, error, message):
    argv = [str(checkpoints[x]) if x in checkpoints else x for x in argv]
    argv = [str(tmp_path / "missing.safetensors") if x == "missing" else x for x in argv]
    with pytest.raises(error, match=message):
        run(*argv, "-o", tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_an_existing_output_or_a_source_is_never_overwritten(checkpoints, tmp_path):
    """``-o`` onto a source, or onto an existing file without ``--force``, is refused and
    leaves the files as they were; ``--force`` overwrites a file that is not a source."""
    before = checkpoints["A"].read_bytes()
    with pytest.raises(ValueError, match="is one of the checkpoints being merged"):
        run("average", checkpoints["A"], checkpoints["C"], "--force", "-o", checkpoints["A"])
    out = tmp_path / "out.safetensors"
    run("average", checkpoints["A"], checkpoints["C"], "-o", out)
    first = out.read_bytes()
    with pytest.raises(ValueError, match="exists; give another path, or --force"):
        run("average", checkpoints["A"], checkpoints["C"], "--alpha", "0.2", "-o", out)
    assert out.read_bytes() == first and checkpoints["A"].read_bytes() == before
    run("average", checkpoints["A"], checkpoints["C"], "--alpha", "0.2", "--force", "-o", out)
    assert out.read_bytes() != first
    (tmp_path / "manifest.json").write_text("{}")  # tmp_path is now a run folder of a store
    with pytest.raises(ValueError, match="is inside a run folder of a run store"):
        run("average", checkpoints["A"], checkpoints["C"], "--force", "-o", tmp_path / "new.safetensors")
    assert not (tmp_path / "new.safetensors").exists()


def test_average_with_per_model_weights(checkpoints, tmp_path):
    """Weights 1, 3 for A and C: 0.25·A + 0.75·C, recorded normalised."""
    out = tmp_path / "weighted.safetensors"
    assert run("average", checkpoints["A"], checkpoints["C"], "--weights", "1", "3", "-o", out) == 0
    merged, meta = load_model(out)
    a, c = load_model(checkpoints["A"])[0].state_dict(), load_model(checkpoints["C"])[0].state_dict()
    for n, value in merged.state_dict().items():
        torch.testing.assert_close(value, 0.25 * a[n] + 0.75 * c[n], atol=1e-6, rtol=1e-5)
    assert meta["merge"]["weights"] == [1.0, 3.0]
    with pytest.raises(ValueError, match="2 weights for 3 models"):
        run("average", checkpoints["A"], checkpoints["C"], checkpoints["B"], "--weights", "1", "3", "-o",
            tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="per-model weights apply to average, not to rebasin"):
        run("rebasin", checkpoints["A"], checkpoints["C"], "--weights", "1", "3", "-o", tmp_path / "y.safetensors")


def test_rebasin_from_an_initial_permutation(checkpoints, tmp_path):
    """The permutation an earlier merge found, given back as the start, is already optimal:
    no sweep improves it, and the result is the same merge. A permutation of the wrong size is refused."""
    first = tmp_path / "first.safetensors"
    run("rebasin", checkpoints["A"], checkpoints["C"], "-o", first)
    first_meta = json.loads(first.with_suffix(".json").read_text())["merge"]
    again = tmp_path / "again.safetensors"
    run("rebasin", checkpoints["A"], checkpoints["C"], "--initial-permutation", first.with_suffix(".json"), "-o", again)
    meta = json.loads(again.with_suffix(".json").read_text())["merge"]
    assert meta["initial"] and meta["permutation"] == first_meta["permutation"]
    assert meta["objective"][0] == pytest.approx(first_meta["objective"][-1]) and len(meta["objective"]) == 2
    torch.testing.assert_close(load_model(again)[0].state_dict(), load_model(first)[0].state_dict())
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**first_meta["permutation"], "fc": [0, 1, 2]}))
    with pytest.raises(ValueError, match="'fc' is not a permutation of range\\(512\\)"):
        run("rebasin", checkpoints["A"], checkpoints["C"], "--initial-permutation", bad, "-o", tmp_path / "z.safetensors")
