"""The batched sprite renderer."""

import math

import torch

from envs.render import Renderer, SpriteBatch, TextureSpec, monochrome_colour



def batch(x, y, rx, ry, texture=0, order=0, patch=16, **kw):
    t = lambda v, dt=torch.float32: torch.tensor([[v]], dtype=dt)  # noqa: E731
    return SpriteBatch(t(x), t(y), t(rx), t(ry), t(texture, torch.int64), t(order, torch.int64),
                       torch.tensor([[True]]), patch, **{k: t(v) for k, v in kw.items()})


def draw(renderer, *batches):
    return renderer.render(torch.tensor([8.0]), torch.tensor([8.0]), 4.0, list(batches))[0]


def test_monochrome_colours_match_procgen_tables():
    assert monochrome_colour(0, 0) == (127, 255, 127)  # agent
    assert monochrome_colour(4, 0) == (127, 63, 127)  # flyer
    assert monochrome_colour(4, 1) == (191, 127, 63)
    assert monochrome_colour(12, 2) == (127, 255, 255)  # present theme 2


def test_box_covers_exactly_the_pixels_whose_centres_it_contains():
    r = Renderer([TextureSpec("fruit1.png", 7)], "cpu", monochrome=True)
    frame = draw(r, batch(x=2.0, y=14.0, rx=1.0, ry=0.5))  # world [1,3]×[13.5,14.5] → px cols 4..11, rows 6..9
    drawn = (frame.sum(-1) > 0).nonzero()
    assert drawn[:, 0].unique().tolist() == [6, 7, 8, 9]
    assert drawn[:, 1].unique().tolist() == list(range(4, 12))
    assert frame[7, 5].tolist() == list(monochrome_colour(7, 0))


def test_higher_order_is_drawn_on_top_whatever_the_batch_order():
    r = Renderer([TextureSpec("fruit1.png", 7), TextureSpec("food1.png", 4)], "cpu", monochrome=True)
    top = batch(8.0, 8.0, 1.0, 1.0, texture=1, order=5)
    below = batch(8.0, 8.0, 2.0, 2.0, texture=0, order=1)
    for frame in (draw(r, top, below), draw(r, below, top)):
        assert frame[32, 32].tolist() == list(monochrome_colour(4, 0))
        assert frame[32, 26].tolist() == list(monochrome_colour(7, 0))


def test_rotation_by_a_quarter_turn_swaps_the_extents():
    r = Renderer([TextureSpec("fruit1.png", 7)], "cpu", monochrome=True)
    flat = (draw(r, batch(8.0, 8.0, 2.0, 0.5)).sum(-1) > 0).nonzero()
    turned = (draw(r, batch(8.0, 8.0, 2.0, 0.5, rotation=math.pi / 2)).sum(-1) > 0).nonzero()
    assert (flat[:, 1].max() - flat[:, 1].min(), flat[:, 0].max() - flat[:, 0].min()) == (15, 3)
    assert (turned[:, 0].max() - turned[:, 0].min(), turned[:, 1].max() - turned[:, 1].min()) == (15, 3)


def test_real_sprites_are_loaded_and_clipped_at_the_frame_edge():
    r = Renderer([TextureSpec("playerShip2_blue.png", 0)], "cpu")
    assert not r.monochrome
    frame = draw(r, batch(0.0, 8.0, 1.0, 1.0))  # half outside on the left
    cols = (frame.sum(-1) > 0).nonzero()[:, 1]
    assert cols.min() == 0 and cols.max() <= 3
    assert len({tuple(p) for p in frame.reshape(-1, 3).tolist()}) > 3  # a picture, not a flat box


def test_tiling_repeats_the_sprite():
    r = Renderer([TextureSpec("tileStone_slope.png", 1)], "cpu")
    one = draw(r, batch(8.0, 8.0, 2.0, 2.0))
    two = draw(r, batch(8.0, 8.0, 2.0, 2.0, tiles_u=2.0))
    assert torch.equal(two[24:40, 24:32], two[24:40, 32:40])  # box px 24..39: two 8-px tiles
    assert not torch.equal(one[24:40, 24:32], one[24:40, 32:40])


def test_per_slot_turns_and_float_fields_draw_like_the_batch_forms():
    r = Renderer([TextureSpec("robot_3Dblue.png", 0), TextureSpec("fruit1.png", 7)], "cpu")
    g = torch.Generator().manual_seed(0)
    n, s = 3, 12
    x, y = torch.rand(n, s, generator=g) * 16, torch.rand(n, s, generator=g) * 16
    rx, ry = 0.2 + torch.rand(n, s, generator=g), 0.2 + torch.rand(n, s, generator=g)
    tex = torch.randint(0, 2, (n, s), generator=g)
    order = torch.randperm(n * s, generator=g).view(n, s)
    vis = torch.ones(n, s, dtype=torch.bool)
    cx = torch.full((n,), 8.0)
    for turns in range(4):
        batch = SpriteBatch(x, y, rx, ry, tex, order, vis, 16, quarter_turns=turns)
        per_slot = SpriteBatch(x, y, rx, ry, tex.float(), order.float(), vis, 16,
                               quarter_turns=torch.full((s,), float(turns)))
        assert torch.equal(r.render(cx, cx, 4.0, [batch]), r.render(8.0, 8.0, 4.0, [per_slot]))


def test_the_static_path_draws_the_same_frames():
    """Without compaction (the path for GPUs) every slot is drawn, invisible ones into a trash frame."""
    textures = [TextureSpec("playerShip2_blue.png", 0), TextureSpec("explosion3.png", 54)]
    fast, static = Renderer(textures, "cpu"), Renderer(textures, "cpu", compact=False)
    g = torch.Generator().manual_seed(1)
    n, s = 4, 20
    fields = [torch.rand(n, s, generator=g) * 16 for _ in range(2)] + [0.3 + torch.rand(n, s, generator=g) for _ in range(2)]
    batches = [SpriteBatch(*fields, torch.randint(0, 2, (n, s), generator=g), torch.randint(0, 1 << 37, (n, s), generator=g),
                           torch.rand(n, s, generator=g) < 0.5, patch, rotation=torch.rand(n, s, generator=g) * 6)
               for patch in (5, 11)]
    cx, cy = torch.rand(n, generator=g) * 4 + 6, torch.rand(n, generator=g) * 4 + 6
    assert torch.equal(fast.render(cx, cy, 4.0, batches), static.render(cx, cy, 4.0, batches))


def test_fruitbot_presents_are_drawn_with_the_sprite_of_their_box():
    """fruitbot/super (the thesis ran restrict_themes=False): each present box shows one of three
    present sprites; the stock task draws present1 only. Monochrome: one flat colour per theme."""
    import envs

    colours = {k: torch.tensor(monochrome_colour(12, k), dtype=torch.uint8) for k in range(3)}
    for task, themes in [("fruitbot/original", {0}), ("fruitbot/super", {0, 1, 2})]:
        env = envs.make(task, num_envs=8, seed=0, monochrome=True)
        env.reset()
        with torch.inference_mode():
            env.state["mob"][:, 1, 2] = 55.0  # the camera (agent y + 4.2) now shows the presents at y 59-60
        row = env.render()[:, 30]  # pixel row 30: world y ≈ 59.5
        seen = {k for k, c in colours.items() if (row == c).all(-1).any()}
        assert seen == themes
        covered = sum((row == c).all(-1) for c in colours.values())
        assert (covered.sum(1) >= 60).all()  # the ten boxes span the width (the agent is not in this row)
