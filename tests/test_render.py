"""The batched sprite renderer."""

import math

import pytest
import torch

from envs.render import ORDER_LIMIT, Renderer, SpriteBatch, TextureSpec, monochrome_colour



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


@pytest.mark.parametrize("native", [False, True], ids=["torch", "native"])
def test_per_slot_turns_and_float_fields_draw_like_the_batch_forms(native):
    """Also with extents by texture and with tiling: odd turns swap both, per slot as per batch."""
    r = Renderer([TextureSpec("robot_3Dblue.png", 0), TextureSpec("fruit1.png", 7)], "cpu", native=native)
    g = torch.Generator().manual_seed(0)
    n, s = 3, 12
    x, y = torch.rand(n, s, generator=g) * 16, torch.rand(n, s, generator=g) * 16
    rx, ry = 0.2 + torch.rand(n, s, generator=g), 0.2 + torch.rand(n, s, generator=g)
    tex = torch.randint(0, 2, (n, s), generator=g)
    order = torch.randperm(n * s, generator=g).view(n, s)
    vis = torch.ones(n, s, dtype=torch.bool)
    cx = torch.full((n,), 8.0)
    extent = torch.tensor([[0.9, 0.4], [0.3, 0.7]])
    tiles = 1.0 + torch.randint(0, 3, (n, s), generator=g).float()
    for turns in range(4):
        slot_turns = torch.full((s,), float(turns))
        for by_texture, tiled in [(False, False), (True, False), (False, True)]:
            extents = dict(rx=None, ry=None, extent_by_texture=extent) if by_texture else dict(rx=rx, ry=ry)
            tiling = dict(tiles_u=tiles, tiles_v=3.0 - tiles) if tiled else {}
            batch = SpriteBatch(x=x, y=y, texture=tex, order=order, visible=vis, patch=16, quarter_turns=turns,
                                **extents, **tiling)
            per_slot = SpriteBatch(x=x, y=y, texture=tex.float(), order=order.float(), visible=vis, patch=16,
                                   quarter_turns=slot_turns, **extents, **tiling)
            frames = r.render(cx, cx, 4.0, [batch])
            assert torch.equal(frames, r.render(8.0, 8.0, 4.0, [per_slot])), (turns, by_texture, tiled)
            assert frames.sum() > 0


def test_the_static_path_and_the_native_kernel_draw_the_same_frames():
    """Without compaction (the path for GPUs) every slot is drawn, invisible ones into a trash
    frame; the C kernel (the CPU's default) draws compact frames in one call."""
    textures = [TextureSpec("playerShip2_blue.png", 0), TextureSpec("explosion3.png", 54)]
    compact, static = Renderer(textures, "cpu", native=False), Renderer(textures, "cpu", compact=False)
    native = Renderer(textures, "cpu", native=True)
    g = torch.Generator().manual_seed(1)
    n, s = 4, 20
    fields = [torch.rand(n, s, generator=g) * 16 for _ in range(2)] + [0.3 + torch.rand(n, s, generator=g) for _ in range(2)]
    batches = [SpriteBatch(*fields, torch.randint(0, 2, (n, s), generator=g), torch.randint(0, ORDER_LIMIT, (n, s), generator=g),
                           torch.rand(n, s, generator=g) < 0.5, patch, rotation=torch.rand(n, s, generator=g) * 6)
               for patch in (5, 11)]
    cx, cy = torch.rand(n, generator=g) * 4 + 6, torch.rand(n, generator=g) * 4 + 6
    frames = compact.render(cx, cy, 4.0, batches)
    assert torch.equal(frames, static.render(cx, cy, 4.0, batches))
    assert torch.equal(frames, native.render(cx, cy, 4.0, batches))


def random_batches(g: torch.Generator, n: int, num_textures: int, general: bool, tiled: bool) -> list[SpriteBatch]:
    """Sprite batches that use every field form: per-slot and per-batch turns, flips, float and
    int64 fields, extents by texture, tiles, float/int/bool visibility, boxes off the frame."""
    def rand(*shape, lo=0.0, hi=1.0):
        return lo + torch.rand(*shape, generator=g) * (hi - lo)

    def slots(s):
        return dict(x=rand(n, s, lo=-1, hi=17), y=rand(n, s, lo=-1, hi=17), texture=torch.randint(0, num_textures, (n, s), generator=g),
                    order=torch.randint(0, ORDER_LIMIT, (n, s), generator=g))
    extent = rand(2, num_textures, lo=0.2, hi=1.2)
    batches = [
        SpriteBatch(**slots(7), rx=rand(n, 7, lo=0.1, hi=1.5), ry=rand(n, 7, lo=0.1, hi=1.5), visible=rand(n, 7) < 0.7,
                    patch=13, quarter_turns=int(torch.randint(0, 4, (), generator=g)),
                    flip=rand(n, 7) < 0.5, tiles_u=rand(n, 7, lo=1, hi=3).floor() if tiled else None),
        SpriteBatch(**{k: v.float() for k, v in slots(9).items()}, rx=None, ry=None, extent_by_texture=extent,
                    visible=(rand(n, 9) < 0.6).float() * 2, patch=11, quarter_turns=torch.randint(0, 4, (9,), generator=g).float(),
                    tiles_v=rand(n, 9, lo=1, hi=3).floor() if tiled else None),
        SpriteBatch(**slots(5), rx=0.8, ry=0.5, visible=torch.randint(0, 2, (n, 5), generator=g), patch=7),
    ]
    if general:
        angle = rand(n, 6, hi=2 * math.pi)
        batches.append(SpriteBatch(**slots(6), rx=rand(n, 6, lo=0.2, hi=0.9), ry=rand(n, 6, lo=0.2, hi=0.9),
                                   visible=rand(n, 6) < 0.8, patch=9, cos=torch.cos(angle), sin=torch.sin(angle)))
        batches.append(SpriteBatch(**slots(4), rx=0.6, ry=0.3, visible=rand(n, 4) < 0.8, patch=9, rotation=angle[:, :4]))
    return batches


@pytest.mark.parametrize("monochrome", [False, True], ids=["sprites", "monochrome"])
def test_the_native_kernel_draws_the_torch_paths_frames(monochrome):
    """Every pass (separable, general, tiled) with every field form, shared and per-environment
    cameras, several scales: bit for bit the torch path's frames."""
    textures = [TextureSpec("playerShip2_blue.png", 0), TextureSpec("tileStone_slope.png", 1),
                TextureSpec("explosion3.png", 54), TextureSpec("fruit1.png", 7)]
    torch_path = Renderer(textures, "cpu", monochrome=monochrome, native=False)
    native = Renderer(textures, "cpu", monochrome=monochrome, native=True)
    g = torch.Generator().manual_seed(2)
    n = 6
    for trial in range(24):
        general, tiled = trial % 2 == 1, trial % 4 >= 2
        batches = random_batches(g, n, len(textures), general, tiled)
        scale = [4.0, 6.4, 3.3][trial % 3]
        camera = (torch.rand(n, generator=g) * 8 + 4, torch.rand(n, generator=g) * 8 + 4) if trial % 2 else (8.0, 7.5)
        frames = native.render(*camera, scale, batches)
        assert frames.is_contiguous() and frames.shape == (n, 64, 64, 3)
        assert torch.equal(frames, torch_path.render(*camera, scale, batches)), (trial, general, tiled)
    assert torch.equal(native.render(torch.zeros(3), 0.0, 4.0, []), torch.zeros(3, 64, 64, 3, dtype=torch.uint8))


def test_the_native_kernel_names_a_bad_texture_or_turn():
    r = Renderer([TextureSpec("fruit1.png", 7)], "cpu", monochrome=True, native=True)
    with pytest.raises(ValueError, match=r"sprite batch 1: a visible slot's texture is outside 0..0"):
        draw(r, batch(8.0, 8.0, 1.0, 1.0), batch(8.0, 8.0, 1.0, 1.0, texture=3))
    turned = SpriteBatch(*[torch.tensor([[v]]) for v in (8.0, 8.0, 1.0, 1.0, 0.0, 0.0)], torch.tensor([[True]]), 4,
                         quarter_turns=torch.tensor([5.0]))
    with pytest.raises(ValueError, match=r"sprite batch 0: a visible slot's quarter turns are outside 0..3"):
        draw(r, turned)


def test_without_a_compiler_the_renderer_falls_back_to_torch(monkeypatch, tmp_path):
    import envs.native

    monkeypatch.setattr(envs.native, "compiler", lambda: None)
    with pytest.warns(UserWarning, match="no C compiler found"):
        assert envs.native.load.__wrapped__("render") is None
    monkeypatch.setattr(envs.native, "load", lambda name: None)
    assert Renderer([TextureSpec("fruit1.png", 7)], "cpu", monochrome=True).native is None
    with pytest.raises(RuntimeError, match="native=True, but the render kernel is not available"):
        Renderer([TextureSpec("fruit1.png", 7)], "cpu", monochrome=True, native=True)


def test_the_kernel_is_built_once_into_the_cache(monkeypatch, tmp_path):
    import envs.native

    monkeypatch.setenv("CRL_MERGE_CACHE", str(tmp_path))
    first = envs.native.build("render", envs.native.compiler())
    assert first is not None and first.parent == tmp_path / "native" and first.suffix == ".so"
    made = first.stat().st_mtime_ns
    assert envs.native.build("render", envs.native.compiler()) == first and first.stat().st_mtime_ns == made
    assert envs.native.load.__wrapped__("render") is not None


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


@pytest.mark.parametrize("task", ["starpilot/super", "fruitbot/super"])
def test_an_environment_draws_with_the_kernel_what_the_torch_path_draws(task):
    """Whole episodes of both games (auto-resets included): each observation equals the torch
    path's frame of the same state."""
    import envs

    env = envs.make(task, num_envs=8, seed=5)
    assert env.renderer.native is not None
    reference = Renderer(env.game.textures, "cpu", native=False)
    env.reset()
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        obs = env.step(torch.randint(0, 15, (8,), generator=g))[0]
        with torch.inference_mode():
            cx, cy, scale = env.game.camera(env.state)
            assert torch.equal(obs, reference.render(cx, cy, scale, env.game.sprites(env.state)))


def test_an_unwritable_cache_falls_back_with_a_warning(monkeypatch, tmp_path):
    import envs.native

    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CRL_MERGE_CACHE", str(blocker))  # a file where the folder should be
    with pytest.warns(UserWarning, match="set CRL_MERGE_CACHE to a writable folder"):
        assert envs.native.build("render", envs.native.compiler()) is None
