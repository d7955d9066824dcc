"""``std::mt19937`` in torch against the C++ standard, numpy's MT19937 and the generators in
the real Procgen's saved state; Procgen's RandGen draws and level-seed stream."""

import numpy as np
import pytest
import torch

import envs
from envs import mt19937, randgen
from envs.procgen_ref import ProcgenRef
from envs.procgen_state import generators


def test_the_standards_check_value():
    # [rand.predef]: the 10000th consecutive invocation of a default-constructed mt19937 gives 4123659995
    assert mt19937.outputs_at(mt19937.DEFAULT_SEED, torch.tensor([9999])).item() == 4123659995


def test_seeding_and_outputs_equal_numpys_mt19937():
    seeds = [0, 1, 5489, 2**31 - 1, 2**32 - 1]
    states = mt19937.seed_state(torch.tensor(seeds))
    gen = mt19937.Outputs(torch.tensor(seeds), blocks=1)
    cursor = torch.tensor([0, 100, 600, 623, 1000])  # the last ones read into later blocks
    got = gen.take(cursor, 700)
    for i, s in enumerate(seeds):
        rs = np.random.RandomState(s)
        np.testing.assert_array_equal(states[i].numpy(), rs.get_state()[1])
        raw = rs.randint(0, 2**32, size=1700, dtype=np.uint32).astype(np.int64)
        np.testing.assert_array_equal(got[i].numpy(), raw[cursor[i]:cursor[i] + 700])


def test_a_negative_int_seed_is_taken_modulo_2_32():
    assert torch.equal(mt19937.seed_state(torch.tensor([-1])), mt19937.seed_state(torch.tensor([2**32 - 1])))


def test_rand01_randint_randn_as_the_cpp_computes_them():
    x = torch.tensor([0, 1, 2**31, 2**32 - 129, 2**32 - 128, 2**32 - 1])
    u = randgen.rand01(x)
    assert u.dtype == torch.float32
    expected = [np.float32(np.float64(v) / 2**32) for v in x.tolist()]  # double quotient, rounded once
    assert u.tolist() == [float(e) for e in expected]
    assert u[-1] == 1.0  # the largest words round up to 1
    assert randgen.randint(x, 10, 30).tolist() == [10 + v % 20 for v in x.tolist()]
    assert randgen.randn(x, 7).tolist() == [v % 7 for v in x.tolist()]


def state_after(seed: int, draws: int) -> tuple[np.ndarray, int]:
    """(words, position) of ``mt19937(seed)`` after ``draws`` draws, as libstdc++ holds them."""
    state = mt19937.seed_state(torch.tensor([seed]))
    blocks = max(1, -(-draws // mt19937.N))
    for _ in range(blocks):
        state = mt19937.twist(state)
    return state[0].numpy(), draws - mt19937.N * (blocks - 1)


@pytest.mark.parametrize("game", ["starpilot", "fruitbot"])
def test_generators_equal_the_real_games_saved_ones(game):
    """After the first reset: environment n's level-seed generator is mt19937(master output n)
    with one word drawn; the level's generator is mt19937(level seed) with as many words drawn
    as our generation of that level reads."""
    real = ProcgenRef(f"{game}/original", num_envs=8, seed=21)
    real.reset()
    ours = envs.make(f"{game}/original", num_envs=8, seed=21, overrides={"level_stream": "procgen"})
    env_seeds = randgen.stream_seeds(21, torch.arange(8))
    level_seeds = torch.tensor([i["level_seed"] for i in real.env.get_info()])
    draws = ours.game.procgen_draws(level_seeds)
    for n, data in enumerate(real.env.get_state()):
        gens = generators(data)
        for name, seed, k in [("level_seed_rand_gen", env_seeds[n], 1), ("rand_gen", level_seeds[n], draws[n])]:
            words, pos = state_after(int(seed), int(k))
            np.testing.assert_array_equal(gens[name][0], words, err_msg=f"{name} of environment {n}")
            assert gens[name][1] == pos, f"{name} of environment {n}"
