"""The real Procgen behind our interface, with wrapper-made variants and clear refusals."""

import pytest
import torch

from envs import ConfigError, get_task
from envs.procgen_ref import ProcgenRef


def test_real_game_steps_through_our_interface():
    env = ProcgenRef("fruitbot/original", num_envs=4, seed=0)
    obs = env.reset()
    assert obs.shape == (4, 64, 64, 3) and obs.dtype == torch.uint8
    ended = 0
    for _ in range(300):
        obs, reward, done, info = env.step(torch.randint(0, 15, (4,)))
        ended += int(done.sum())
        assert (info["episode_length"][done] > 0).all()
    assert ended > 0


@pytest.mark.parametrize("on_death", [False, True])
def test_survival_bonus_and_disabled_fire_are_wrapped(on_death):
    # dodge's wrappable rules (starpilot/dodge itself also ends its level at step 200: not wrappable)
    calm = get_task("starpilot/original", {"player_can_fire": False, "survival_bonus": 0.1,
                                            "survival_bonus_on_death": on_death})
    stock, dodge = ProcgenRef("starpilot/original", 8, seed=3), ProcgenRef(calm, 8, seed=3)
    stock.reset()
    dodge.reset()
    for _ in range(40):
        fire = torch.full((8,), 9)
        _, r_stock, d_stock, _ = stock.step(torch.full((8,), 4))  # no-op in the stock game ...
        _, r_dodge, d_dodge, i_dodge = dodge.step(fire)  # ... is what firing becomes in dodge
        assert torch.equal(d_stock, d_dodge)
        died = d_dodge & ~i_dodge["prev_level_complete"]
        assert torch.allclose(r_dodge, r_stock + torch.where(died & (not on_death), 0.0, 0.1))


def test_rules_the_real_game_lacks_are_refused_by_name():
    with pytest.raises(ConfigError, match=r"changes \['enemies_fire', 'group_size', 'rocket_sprites'\]"):
        ProcgenRef("starpilot/shoot", 2, allow_visual_differences=True)  # the thesis's rocket (spaceRockets_003) is wider
    with pytest.raises(ConfigError, match=r"changes \['level_end_step', 'rocket_sprites'\]"):
        ProcgenRef("starpilot/dodge", 2, allow_visual_differences=True)
    with pytest.raises(ConfigError, match="enemy_sprites"):
        ProcgenRef("starpilot/super", 2)
    with pytest.raises(ConfigError, match="fruit_count"):
        ProcgenRef("fruitbot/fruits", 2, allow_visual_differences=True)
    with pytest.raises(ValueError, match="actions must be in"):
        env = ProcgenRef("starpilot/original", 2)
        env.reset()
        env.step(torch.tensor([0, 15]))
