"""FruitBot's rules (procgen-games-spec.md §3), checked on the real engine with hand-set states."""

import pytest
import torch

import envs
from envs.games.fruitbot import AGENT_R, PARK, Fruitbot, fitted_half_extents, height_table

CPU = torch.device("cpu")

NB = 10  # barrier pieces come first in state["boxes"], then 10 presents, then fruits, then treats
NOOP, LEFT, RIGHT, KEY = 4, 1, 7, 9


def game(task="fruitbot/original"):
    return Fruitbot(envs.get_task(task).config, CPU)


def levels(g, n=2000, first=0):
    return g.generate(torch.arange(first, first + n))


def items(g, state):
    """Live item boxes: (x, y, rx, ry) [N, C] each, and the live mask."""
    b = state["boxes"][:, :, NB + 10:]
    return b[:, 0], b[:, 1], b[:, 2], b[:, 3], b[:, 1] > PARK / 2


def clear_level(state):
    """The same level without barriers and items: nothing but the presents to touch."""
    s = dict(state)
    boxes = s["boxes"].clone()
    boxes[:, 1, :NB] = PARK
    boxes[:, 1, NB + 10:] = PARK
    s["boxes"] = boxes
    return s


def place_agent(state, x):
    s = dict(state)
    mob = s["mob"].clone()
    mob[:, 0, 2] = x
    s["mob"] = mob
    return s


def run(g, state, action, steps):
    """Step ``steps`` times with a constant action; returns the final state and per-step records."""
    n = state["t"].shape[0]
    act = torch.full((n,), action)
    rewards, dones, completes = [], [], []
    for _ in range(steps):
        state, r, d, c = g.step(state, act)
        rewards.append(r)
        dones.append(d)
        completes.append(c)
    return state, torch.stack(rewards, 1), torch.stack(dones, 1), torch.stack(completes, 1)


# --- level generation -------------------------------------------------------------------

def test_wall_rows_sit_at_integer_heights_at_least_4_apart_and_the_last_at_56():
    s = levels(game())
    y = s["boxes"][:, 1, :NB].view(-1, 5, 2)
    assert torch.equal(y[..., 0], y[..., 1])
    h = y[..., 0]
    assert torch.equal(h, h.round())
    assert (h[:, 0] >= 4).all() and (h[:, 1:] - h[:, :-1] >= 4).all()
    assert (h[:, -1] == 56).all()
    assert (s["boxes"][:, 3, :NB] == 0.3).all()
    # spacings are 4 + multinomial(36, 5 equal cells): each extra has mean 36/5
    extra = torch.diff(h, dim=1, prepend=torch.zeros_like(h[:, :1])) - 4
    assert (extra.mean(0) - 7.2).abs().max() < 0.3


def test_each_row_has_one_gap_2_to_4_wide_between_a_left_and_a_right_piece():
    s = levels(game())
    x, rx = s["boxes"][:, 0, :NB].view(-1, 5, 2), s["boxes"][:, 2, :NB].view(-1, 5, 2)
    left_end = x[..., 0] + rx[..., 0]
    right_start = x[..., 1] - rx[..., 1]
    assert torch.allclose(x[..., 0] - rx[..., 0], torch.zeros(()), atol=1e-5)  # left piece starts at 0
    assert torch.allclose(x[..., 1] + rx[..., 1], torch.full((), 10.0), atol=1e-5)  # right piece ends at 10
    gap = right_start - left_end
    assert (gap >= 2 - 1e-5).all() and (gap < 4 + 1e-5).all()
    assert gap.min() < 2.1 and gap.max() > 3.9  # uniform over [2, 4)


def test_agent_starts_at_the_bottom_anywhere_across_the_width():
    s = levels(game())
    x, y = s["mob"][:, 0, 2], s["mob"][:, 1, 2]
    assert (y == AGENT_R).all() and (s["t"] == 0).all()
    assert (x >= 0.4).all() and (x <= 9.6).all() and x.min() < 0.6 and x.max() > 9.4


@pytest.mark.parametrize("task, fruits, treats", [
    ("fruitbot/original", (10, 19), (10, 19)),
    ("fruitbot/super", (10, 19), (10, 19)),  # the thesis code: randn(10) + 10 each, as stock
    ("fruitbot/treats", (0, 0), (20, 43)),  # randn(24) + 20
    ("fruitbot/fruits", (20, 39), (0, 0)),  # randn(20) + 20
    ("fruitbot/empty", (0, 0), (0, 0)),
])
def test_item_counts_follow_the_config(task, fruits, treats):
    g = game(task)
    s = levels(g)
    *_, live = items(g, s)
    nf, nt = live[:, :g.num_fruit].sum(1), live[:, g.num_fruit:].sum(1)
    # an item is dropped only if it still overlaps another after placement (about 1 level in 1000)
    assert (nf <= fruits[1]).all() and (nt <= treats[1]).all()
    assert (nf >= fruits[0] - 1).all() and (nt >= treats[0] - 1).all()
    assert (nf >= fruits[0]).float().mean() > 0.98 and (nt >= treats[0]).float().mean() > 0.98
    if fruits[1] > fruits[0]:
        assert set(nf.tolist()) >= set(range(fruits[0] + 1, fruits[1] + 1))
    if treats[1] > treats[0]:
        assert set(nt.tolist()) >= set(range(treats[0] + 1, treats[1] + 1))


@pytest.mark.parametrize("task", ["fruitbot/original", "fruitbot/treats", "fruitbot/fruits"])
def test_items_overlap_nothing_at_the_start(task):
    g = game(task)
    s = levels(g)
    x, y, _, _, live = items(g, s)
    # placement uses 1×1 boxes: no two live items within 1 of each other on both axes
    near = ((x[:, :, None] - x[:, None]).abs() < 1) & ((y[:, :, None] - y[:, None]).abs() < 1)
    near &= live[:, :, None] & live[:, None] & ~torch.eye(x.shape[1], dtype=torch.bool)
    assert not near.any()
    # nor with a barrier piece, the presents (y > 58.5) or the agent
    b = s["boxes"][:, :, :NB]
    on_wall = (((x[:, :, None] - b[:, None, 0]).abs() < b[:, None, 2] + 0.5)
               & ((y[:, :, None] - b[:, None, 1]).abs() < 0.8)).any(2) & live
    assert not on_wall.any()
    assert (y[live] <= 58.5).all() and (y[live] >= 0.5).all() and (x[live] >= 0.5).all() and (x[live] <= 9.5).all()
    ax = s["mob"][:, 0, 2, None]
    assert not (((x - ax).abs() < 0.9) & (y < 1.3) & live).any()


def test_item_boxes_are_fitted_to_their_sprites():
    assert fitted_half_extents("fruit1.png") == pytest.approx((0.482, 0.5), abs=1e-3)
    assert fitted_half_extents("fruit3.png") == pytest.approx((0.5, 0.367), abs=1e-3)
    assert fitted_half_extents("food1.png") == pytest.approx((0.28, 0.5), abs=1e-3)
    assert fitted_half_extents("food3.png") == (0.5, 0.5)
    g = game("fruitbot/super")  # fruits: watermelon or cherries; treats: popcorn or ice cream
    s = levels(g)
    _, _, rx, ry, live = items(g, s)
    fr, tr = slice(0, g.num_fruit), slice(g.num_fruit, None)
    fruit_sizes = set(zip(rx[:, fr][live[:, fr]].tolist(), ry[:, fr][live[:, fr]].tolist()))
    treat_sizes = set(zip(rx[:, tr][live[:, tr]].tolist(), ry[:, tr][live[:, tr]].tolist()))
    assert fruit_sizes == {fitted_half_extents("fruit3.png"), fitted_half_extents("fruit5.png")}
    assert treat_sizes == {fitted_half_extents("food3.png"), fitted_half_extents("food1.png")}
    # the sprite drawn is the one that sized the box
    from envs.games.fruitbot import TEXTURE
    tex = s["draw"][:, TEXTURE, g.wide0 - 3 - g.num_items:g.wide0 - 3].long()  # items come before keys, agent, wide tiles
    names = [g.textures[i].file for i in tex[live].tolist()]
    assert torch.equal(s["draw"][:, :4, g.wide0 - 3 - g.num_items:g.wide0 - 3], s["boxes"][:, :, NB + 10:])
    sizes = list(zip(rx[live].tolist(), ry[live].tolist()))
    assert all(fitted_half_extents(n) == sz for n, sz in zip(names, sizes))


def test_a_seed_gives_the_same_walls_and_start_in_every_task():
    a, b = levels(game("fruitbot/original"), 50), levels(game("fruitbot/treats"), 50)
    assert torch.equal(a["boxes"][:, :, :NB + 10], b["boxes"][:, :, :NB + 10])
    assert torch.equal(a["mob"], b["mob"])


# --- motion --------------------------------------------------------------------------

def test_agent_is_clamped_to_the_world_and_settles_at_full_speed():
    g = game()
    s = levels(g, 64)
    for action, wall in [(LEFT, 0.4), (RIGHT, 9.6)]:
        end, *_ = run(g, clear_level(s), action, 30)
        assert torch.allclose(end["mob"][:, 0, 2], torch.full((64,), wall))
        assert (end["mob"][:, 2, 2] == 0).all()  # velocity into the wall is cancelled
    # free lateral speed settles at 0.45·0.85/0.55 ≈ 0.6955 per step
    mid = place_agent(clear_level(s), 0.5)
    after, *_ = run(g, mid, RIGHT, 12)
    assert torch.allclose(after["mob"][:, 2, 2], torch.full((64,), 0.6955), atol=2e-3)
    x = mid["mob"][:, 0, 2]
    for t in range(40):
        mid, *_ = g.step(mid, torch.randint(0, 15, (64,), generator=torch.Generator().manual_seed(t)))
        x = mid["mob"][:, 0, 2]
        assert (x >= 0.392).all() and (x <= 9.608).all()  # [rx, W - rx] up to the 98% corner test


def test_vertical_motion_ignores_actions_and_reaches_the_presents_at_step_420():
    y = height_table(500)
    assert y[0] == pytest.approx(0.4)
    assert y[1] == pytest.approx(0.4765, abs=1e-5)
    assert (y[400] - y[399]) == pytest.approx(0.13909, abs=1e-4)
    assert abs(y[419] - 59.5) >= 0.9 and abs(y[420] - 59.5) < 0.9
    g = game("fruitbot/empty")
    s = clear_level(levels(g, 8))
    end, rewards, dones, completes = run(g, s, NOOP, 420)
    assert not dones[:, :419].any() and dones[:, 419].all() and completes[:, 419].all()
    assert (end["t"] == 420).all()
    # another action, same heights
    end2, *_ = run(g, s, KEY, 420)
    assert torch.equal(end["mob"][:, 1, 2], end2["mob"][:, 1, 2])


# --- rewards and termination ------------------------------------------------------------

@pytest.mark.parametrize("x, presents", [(5.0, 2), (0.4, 1), (9.6, 1), (4.5, 1), (4.4, 1), (4.61, 2), (7.3, 2)])
@pytest.mark.parametrize("task", ["fruitbot/original", "fruitbot/empty"])
def test_the_presents_pay_per_box_in_the_stock_game_and_once_in_the_thesis_tasks(x, presents, task):
    g = game(task)
    s = place_agent(clear_level(levels(g, 1)), x)
    _, rewards, dones, completes = run(g, s, NOOP, 420)
    once = task != "fruitbot/original"  # fruitbot.cpp of the thesis: +10 only while the step is not done
    assert rewards[0, -1] == pytest.approx(10.0 if once else 10.0 * presents)
    assert rewards[0, :-1].eq(0).all()
    assert dones[0, -1] and completes[0, -1]


def test_touching_a_barrier_ends_the_episode_without_reward():
    g = game()
    s = levels(g, 256)
    s = dict(s, boxes=s["boxes"].clone())
    s["boxes"][:, 1, NB + 10:] = PARK  # no items
    h1 = s["boxes"][:, 1, 0]
    left_end = 2 * s["boxes"][:, 2, 0]
    # stand in the left piece's column (or right piece's, if the left piece is narrow)
    x = torch.where(left_end > 1.0, 0.4, 9.6)
    s = place_agent(s, x)
    _, rewards, dones, completes = run(g, s, NOOP, 300)
    first = dones.float().argmax(1)
    assert dones.any(1).all() and not completes.any()
    assert (rewards == 0).all()
    # the episode ends at the first step the agent's box overlaps the row: y > h1 - 0.7
    ys = torch.as_tensor(height_table(400))
    expected = torch.stack([torch.nonzero(ys > h - 0.7)[0, 0] for h in h1]) - 1
    assert torch.equal(first, expected)


def test_fruit_and_treat_rewards_and_removal():
    g = game()
    s = clear_level(levels(g, 1))
    boxes = s["boxes"].clone()
    fi, ti = NB + 10, NB + 10 + g.num_fruit
    ax = float(s["mob"][0, 0, 2])
    y5 = float(height_table(5)[5])
    # a fruit and a treat both reached on step 5, another fruit on step 5 too, one treat never
    boxes[0, :, fi] = torch.tensor([ax, y5 + 0.85, 0.482, 0.5])
    boxes[0, :, fi + 1] = torch.tensor([ax + 0.3, y5 + 0.5, 0.482, 0.5])
    boxes[0, :, ti] = torch.tensor([ax - 0.3, y5 + 0.85, 0.28, 0.5])
    boxes[0, :, ti + 1] = torch.tensor([ax + 2.0 if ax < 5 else ax - 2.0, 30.0, 0.28, 0.5])
    s["boxes"] = boxes
    end, rewards, dones, _ = run(g, s, NOOP, 10)
    touched = rewards[0].nonzero().squeeze(1).tolist()
    assert sum(rewards[0].tolist()) == pytest.approx(1 + 1 - 4)
    assert not dones.any()
    assert end["boxes"][0, 1, fi] == PARK and end["boxes"][0, 1, fi + 1] == PARK and end["boxes"][0, 1, ti] == PARK
    assert end["boxes"][0, 1, ti + 1] == 30.0
    assert len(touched) <= 3


def test_treat_reward_comes_from_the_config_and_several_items_in_one_step_all_count():
    g = game("fruitbot/treats")  # treats −3, survival bonus 0.05
    s = clear_level(levels(g, 1))
    boxes = s["boxes"].clone()
    ti = NB + 10
    ax = float(s["mob"][0, 0, 2])
    y1 = float(height_table(1)[1])
    boxes[0, :, ti] = torch.tensor([ax, y1 + 0.8, 0.5, 0.5])
    boxes[0, :, ti + 1] = torch.tensor([ax, y1 - 0.8, 0.28, 0.5])
    s["boxes"] = boxes
    _, r, d, _ = g.step(s, torch.tensor([NOOP]))
    assert r.item() == pytest.approx(-3 - 3 + 0.05)
    assert not d.item()


@pytest.mark.parametrize("on_death", [True, False])
def test_survival_bonus_is_paid_every_step_and_on_a_wall_hit_only_if_configured(on_death):
    # fruitbot_treats.cpp adds it to every step, the wall hit included (survival_bonus_on_death)
    g = Fruitbot(envs.get_task("fruitbot/treats").config.with_overrides({"survival_bonus_on_death": on_death}), CPU)
    s = place_agent(clear_level(levels(g, 1)), 5.0)
    _, rewards, dones, _ = run(g, s, NOOP, 420)
    assert torch.allclose(rewards[0, :-1], torch.full((419,), 0.05))
    assert rewards[0, -1].item() == pytest.approx(10.05)  # completion step: +10 once, and the bonus
    # a wall hit (no items left, so the step's reward is the bonus or nothing)
    s = levels(g, 64)
    s = dict(s, boxes=s["boxes"].clone())
    s["boxes"][:, 1, NB + 10:] = PARK
    _, rewards, dones, _ = run(g, s, NOOP, 100)
    step = dones.float().argmax(1)
    hit = dones.any(1)
    assert hit.any()
    assert torch.allclose(rewards[hit, step[hit]], torch.tensor(0.05 if on_death else 0.0))
    # no bonus in the stock game
    g0 = game()
    _, rewards0, _, _ = run(g0, place_agent(clear_level(levels(g0, 1)), 5.0), NOOP, 50)
    assert (rewards0 == 0).all()


# --- keys ---------------------------------------------------------------------------

def test_keys_fly_up_for_8_steps_with_a_cooldown_of_8_and_break_on_barriers():
    g = game("fruitbot/empty")
    s = place_agent(clear_level(levels(g, 1)), 5.0)
    ys = []
    for t in range(1, 25):
        s, *_ = g.step(s, torch.tensor([KEY]))
        ys.append(s["mob"][0, 1, :2].tolist())
        if t < 8:
            assert (s["mob"][0, 1, :2] == PARK).all()  # the first throw is possible at t = 8
    agent_y = height_table(30)
    assert ys[7][1] == pytest.approx(float(agent_y[8]))  # thrown at t = 8 from the agent's centre
    assert ys[8][1] == pytest.approx(float(agent_y[8]) + 0.5)
    assert ys[15] == pytest.approx([float(agent_y[8]) + 4.0, float(agent_y[16])])  # 2 keys at t = 16
    assert ys[16][0] == PARK  # gone after 8 moves
    # a barrier row right above the agent breaks the key
    s = place_agent(clear_level(levels(g, 1)), 5.0)
    boxes = s["boxes"].clone()
    boxes[0, :, 0] = torch.tensor([5.0, 4.0, 5.0, 0.3])
    s["boxes"] = boxes
    for t in range(1, 13):
        s, *_ = g.step(s, torch.tensor([KEY if t == 8 else NOOP]))
        key_y = s["mob"][0, 1, 1].item()
        if key_y != PARK:
            assert key_y + 0.25 <= 4.0 - 0.3 + 1e-4


# --- the batched environment ---------------------------------------------------------

def test_step_returns_new_tensors_and_leaves_its_input_alone():
    g = game()
    s = levels(g, 16)
    before = {k: v.clone() for k, v in s.items()}
    new, r, d, c = g.step(s, torch.full((16,), KEY))
    for k in s:
        assert torch.equal(s[k], before[k])
    assert r.dtype == torch.float32 and d.dtype == torch.bool and c.dtype == torch.bool
    assert (new["t"] == 1).all()


def test_same_seed_gives_bit_identical_streams_and_other_seeds_differ():
    def stream(seed):
        env = envs.make("fruitbot/original", num_envs=8, seed=seed)
        obs = [env.reset().clone()]
        rews = []
        g = torch.Generator().manual_seed(0)
        for _ in range(120):
            o, r, d, info = env.step(torch.randint(0, 15, (8,), generator=g))
            obs.append(o.clone())
            rews.append(r.clone())
        return torch.stack(obs), torch.stack(rews)

    a, b, c = stream(3), stream(3), stream(4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_camera_follows_the_agent_and_the_frame_shows_it():
    env = envs.make("fruitbot/empty", num_envs=4, seed=0)
    obs = env.reset()
    cx, cy, scale = env.game.camera(env.state)
    assert scale == 6.4 and cx == 5
    assert torch.allclose(cy, env.state["mob"][:, 1, 2] + 4.2)
    assert obs.shape == (4, 64, 64, 3) and obs.dtype == torch.uint8
    # the robot is centred on pixel row 58.88 at column 6.4·x; the stone strip fills the bottom rows
    x = env.state["mob"][:, 0, 2]
    for i in range(4):
        col = int(6.4 * x[i])
        assert obs[i, 57:60, col].sum() > 0
        assert obs[i, 62:64].sum() > 0  # out-of-world stone cells below y = 0


def test_the_drawing_table_follows_items_and_movers():
    """``draw`` mirrors the item boxes and the movers; eaten items vanish from both."""
    from envs.games.fruitbot import TEXTURE  # noqa: F401  (row layout documented in the module)
    env = envs.make("fruitbot/original", num_envs=16, seed=7)
    env.reset()
    g = env.game
    items = slice(g.wide0 - 3 - g.num_items, g.wide0 - 3)
    gen = torch.Generator().manual_seed(0)
    eaten = 0
    for _ in range(150):
        before = env.state["boxes"][:, 1, NB + 10:].clone()
        env.step(torch.randint(0, 15, (16,), generator=gen))
        s = env.state
        assert torch.equal(s["draw"][:, :4, items], s["boxes"][:, :, NB + 10:])
        assert torch.equal(s["draw"][:, :2, g.wide0 - 3:g.wide0], s["mob"][:, :2])
        eaten += int(((before > PARK / 2) & (s["boxes"][:, 1, NB + 10:] == PARK) & (s["t"][:, None] > 0)).sum())
    assert eaten > 0


def test_present_sprites_one_per_box_in_the_thesis_tasks():
    from envs.games.fruitbot import NUM_CELLS, NUM_TILES, TEXTURE
    boxes = slice(NUM_CELLS + NUM_TILES, NUM_CELLS + NUM_TILES + 10)
    for task, expected in [("fruitbot/original", {"present1.png"}),
                           ("fruitbot/super", {"present1.png", "present2.png", "present3.png"})]:
        g = game(task)
        s = levels(g, 200)
        tex = s["draw"][:, TEXTURE, boxes].long()
        assert {g.textures[i].file for i in tex.flatten().tolist()} == expected
        if len(expected) > 1:  # drawn per box, uniformly
            assert (tex != tex[:, :1]).any(1).float().mean() > 0.9
            share = torch.stack([(tex == tex.min() + k).float().mean() for k in range(3)])
            assert (share - 1 / 3).abs().max() < 0.03
    # the presents' sprites change nothing else of the level
    other = Fruitbot(envs.get_task("fruitbot/original", {"present_sprites": ["present1.png", "present3.png"]}).config, CPU)
    a, b = levels(game("fruitbot/original"), 50), levels(other, 50)
    assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["mob"], b["mob"])
