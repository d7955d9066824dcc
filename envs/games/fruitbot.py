"""FruitBot (Procgen, distribution mode "easy") as a batched torch program.

Rules: ``procgen-games-spec.md`` §3 (and §1 for the shared engine). The task config
(``envs.config.FruitbotConfig``) sets rewards (the finish per present box or once), item
counts, item and present sprites and the survival bonus (§5.4-5.7).

State (every tensor has a leading ``[N]`` environment dimension):

* ``t``      int64 ``[N]``: steps taken in this episode.
* ``mob``    float32 ``[N, 3, 3]``: the moving things, planar: rows (x, y, w), columns
  (older key, newer key, agent). For a key w is its age in steps; for the agent it is vx.
  The agent's vertical motion never depends on the actions (§3.2), so its y comes from a
  table indexed by ``t``, built with the original's float32 arithmetic: the agent reaches
  the presents at exactly step 420. A key slot that holds no key is parked far below the
  world (y = ``PARK``).
* ``fire``   int64 ``[N]``: step of the last key throw (0 at reset).
* ``boxes``  float32 ``[N, 4, M]``: planar (x, y, rx, ry) of everything the agent can
  touch, in the original's list order: 10 barrier pieces (row by row, left then right),
  10 presents, the fruit slots, then the treat slots. Items that do not exist or were
  eaten are parked at y = ``PARK``, so they can be neither touched nor seen.
* ``draw``   float32 ``[N, 8, S]``: what is drawn, one column per sprite slot in draw order:
  100 stone cells, the barrier tiles, the 10 presents, the fruit and treat slots, the two
  keys, the agent, then the wide barrier tiles. Rows: the box (x, y, rx, ry), the texture,
  the draw order, quarter turns (3 for the agent, drawn facing up), and ry + 5.5 (a
  conservative "in view" test: |y − camera y| < ry + 5.5). The barriers are drawn as
  tiles (§1.10.4): each piece split into ``max(1, floor(w / 0.6))`` equal tiles, 14 slots
  per row; tiles at most 7 px wide are drawn with an 8-px patch, the rare wider ones (a
  piece 1.09-1.2 units wide drawn as one tile) with a 10-px patch. The items' and the
  movers' boxes mirror ``boxes`` and ``mob``; ``step`` keeps them in sync.

Rendering uses two sprite batches over ``draw``: everything but the wide tiles, and the
wide tiles. Draw order follows §3.7: cells, barriers, presents, fruits, treats, keys (older
first), agent. ``step(..., inplace=True)`` (what ``VecGame`` uses) updates ``draw`` in place.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from envs import mt19937, randgen, rng
from envs.config import FruitbotConfig
from envs.render import SpriteBatch, TextureSpec

# --- world and physics constants (spec §3.8) ---------------------------------------------
W, H = 10.0, 60.0
AGENT_R = 0.4
WALL_RY = 0.3
NUM_ROWS = 5
TILES_PER_ROW = 14  # a row has at most 13 + 1 tiles (see _tiles)
NUM_TILES = NUM_ROWS * TILES_PER_ROW
KEY_R, KEY_SPEED, KEY_LIFE, KEY_COOLDOWN = 0.25, 0.5, 8, 8
SCALE = 6.4  # px per world unit (view 10 units wide)
PATCH, WIDE_PATCH = 8, 10  # render patches: cover boxes up to 7 px / 9 px wide
NARROW_RX = 0.54  # tiles with rx above this (3.46 px) go to the wide batch
PARK = -1000.0  # y of slots that hold nothing
CAND = 12  # placement candidates per item (the original redraws up to 100 times)
ROUNDS = 8  # at most this many conflict-resolution rounds between items at placement time
STREAM = 0  # envs.rng stream of level generation; draws are split by counter range
ITEM_TRIES = 101  # the real game's placement draws per item: the first and up to 100 redraws
AGENT_SPAN = float(np.float32(W) - np.float32(2 * AGENT_R))  # float32 10 − 0.8
PCT_MIN_F = float(np.float32(0.2))  # the gap fraction's minimum, a float in the original

_f32 = np.float32
_R98 = _f32(_f32(AGENT_R) * _f32(0.98))  # half-width of the 98% box of the border test (§1.4)
_SNAP_LO = float(_f32(AGENT_R))  # ceil(x - rx) + rx: a blocked move to the left
_SNAP_HI = float(_f32(_f32(W) - _f32(AGENT_R)))  # floor(x + rx) - rx: a blocked move to the right


def _right_limit() -> float:
    """Largest float32 x with fl(x + 0.392) < 10; a sub-move to beyond it is blocked."""
    x = _f32(W) - _R98
    while _f32(x + _R98) >= _f32(W):
        x = np.nextafter(x, _f32(-np.inf), dtype=_f32)
    while _f32(np.nextafter(x, _f32(np.inf), dtype=_f32) + _R98) < _f32(W):
        x = np.nextafter(x, _f32(np.inf), dtype=_f32)
    return float(x)


_X_HI = _right_limit()
_X_LO = float(_R98)  # x' - 0.392 < 0 ⇔ x' < 0.392 exactly in IEEE arithmetic
_ACCEL = float(_f32(_f32(0.5) * _f32(0.85)))  # mixrate · maxspeed (times the lateral input)


def height_table(n: int) -> np.ndarray:
    """Agent y after t steps, t = 0..n, in the original's float32 arithmetic (§1.3, §1.4)."""
    f = _f32
    acc = f(f(f(0.5) * f(0.85)) * f(0.2))
    vy, y = f(0.0), f(AGENT_R)
    out = [y]
    for _ in range(n):
        vy = f(f(0.5) * vy)
        vy = f(vy + acc)
        vy = f(0.9 * np.float64(vy))  # the original decays with a double constant
        q = f(vy * f(0.25))
        unblocked = 0
        for _ in range(4):
            ny = f(y + q)
            if f(ny + _R98) >= f(H):  # the world's top (only reachable after the presents)
                y = f(f(math.floor(f(ny + f(AGENT_R)))) - f(AGENT_R))
            else:
                y, unblocked = ny, unblocked + 1
        vy = f(vy * f(unblocked / 4))
        out.append(y)
    return np.array(out, dtype=np.float32)


# Pixel sizes (PNG headers of procgen's misc_assets) of every sprite a config may name.
SPRITE_SIZE = {
    "fruit1.png": (27, 28), "fruit2.png": (24, 30), "fruit3.png": (30, 22), "fruit4.png": (20, 31),
    "fruit5.png": (23, 23), "fruit6.png": (22, 26), "food1.png": (14, 25), "food2.png": (28, 13),
    "food3.png": (19, 19), "food4.png": (21, 20), "food5.png": (22, 24), "food6.png": (22, 22),
    "present1.png": (26, 26), "present2.png": (26, 26), "present3.png": (26, 26),
    "keyRed2.png": (32, 32), "robot_3Dblue.png": (148, 154), "tileStone_slope.png": (16, 16),
    "playerShip2_blue.png": (112, 75), "towerDefense_tile295.png": (60, 60), "towerDefense_tile296.png": (68, 68),
    "explosion1.png": (60, 60), "explosion2.png": (57, 56), "explosion3.png": (64, 63), "explosion4.png": (46, 45),
    "explosion5.png": (53, 52), "spaceShips_001.png": (106, 80), "spaceShips_002.png": (101, 74),
    "spaceShips_003.png": (100, 94), "spaceShips_004.png": (126, 108), "spaceShips_005.png": (136, 84),
    "spaceShips_006.png": (94, 148), "spaceShips_007.png": (172, 151), "spaceShips_008.png": (100, 82),
    "spaceShips_009.png": (114, 82), "spaceRockets_001.png": (122, 374), "spaceRockets_002.png": (157, 309),
    "spaceRockets_003.png": (118, 315), "spaceRockets_004.png": (136, 369),
}


def fitted_half_extents(sprite: str) -> tuple[float, float]:
    """Half-extents of a 1×1 item box shrunk to its sprite's aspect ratio (§3.3 step 7)."""
    w, h = SPRITE_SIZE.get(sprite, (1, 1))
    ar = _f32(_f32(w) / _f32(h))
    if ar > 1:
        return 0.5, float(_f32(_f32(0.5) / ar))
    return float(_f32(_f32(0.5) * ar)), 0.5


# Rows of the drawing table ``draw``: box, texture, draw order, quarter turns, ry + 5.5.
X, Y, RX, RY, TEXTURE, ORDER, TURNS, VIEW = range(8)

# Procgen image type ids, for the monochrome colours (spec Appendix A).
T_AGENT, T_BARRIER, T_CELL, T_KEY, T_TREAT, T_FRUIT, T_PRESENT = 0, 1, 2, 3, 4, 7, 12
TEX_AGENT, TEX_BARRIER, TEX_CELL, TEX_KEY, TEX_PRESENT = 0, 1, 2, 3, 4

# Out-of-world cells that can come into view: row -1 below the world and rows 60..68 above
# it, columns 0..9 (columns -1 and 10 stay just outside the canvas). Drawn x-major, as the
# original's grid loop does; each covers its unit square grown by 0.02 on every side.
CELL_EPS = 0.02
CELLS = [(cx, cy) for cx in range(10) for cy in [-1] + list(range(60, 69))]
NUM_CELLS = len(CELLS)


class Fruitbot:
    """The FruitBot game (spec §3) for ``envs.core.VecGame``."""

    def __init__(self, config: FruitbotConfig, device: torch.device):
        self.config = config
        self.device = dev = torch.device(device)
        self.sync_ok = dev.type == "cpu"  # data-dependent shortcuts cost nothing there
        f32 = dict(device=dev, dtype=torch.float32)
        i64 = dict(device=dev, dtype=torch.int64)
        self.num_fruit, self.num_treat = config.fruit_count[1], config.treat_count[1]
        self.num_items = C = self.num_fruit + self.num_treat
        nb = 2 * NUM_ROWS

        # textures: agent, barrier, stone cell, key, presents…, treats…, fruits…
        self.textures = [TextureSpec("robot_3Dblue.png", T_AGENT), TextureSpec("tileStone_slope.png", T_BARRIER),
                         TextureSpec("tileStone_slope.png", T_CELL), TextureSpec("keyRed2.png", T_KEY)]
        self.textures += [TextureSpec(s, T_PRESENT, i) for i, s in enumerate(config.present_sprites)]
        self.num_present_themes = len(config.present_sprites)
        tex_treat0 = len(self.textures)
        self.textures += [TextureSpec(s, T_TREAT, i) for i, s in enumerate(config.treat_sprites)]
        tex_fruit0 = len(self.textures)
        self.textures += [TextureSpec(s, T_FRUIT, i) for i, s in enumerate(config.fruit_sprites)]
        self.tex_radii = torch.tensor([fitted_half_extents(s.file) for s in self.textures], **f32)  # [T, 2]

        # step tables
        self.accel = torch.tensor([-_ACCEL] * 3 + [0.0] * 3 + [_ACCEL] * 3 + [0.0] * 6, **f32)  # by action
        heights = height_table(1001)
        self.heights = torch.as_tensor(heights, **f32)  # y by t (episodes end at t = 420)
        # no wall can be touched before the agent's top reaches the lowest possible one (y = 3.7)
        first_row_bottom = 4 - WALL_RY
        self.min_episode_length = min(config.timeout, int(np.argmax(heights + AGENT_R + 0.01 > first_row_bottom)))
        # the finish: per present box overlapped (stock), or once (added in ``step``)
        self.finish_once = config.present_reward_once
        rew = [0.0] * nb + [0.0 if self.finish_once else config.present_reward] * 10
        rew += [config.fruit_reward] * self.num_fruit + [config.treat_reward] * self.num_treat
        self.box_reward = torch.tensor(rew, **f32)
        self.edible = torch.arange(nb + 10 + C, **i64) >= nb + 10
        self.mob_radius = torch.tensor([KEY_R, KEY_R, AGENT_R], **f32)[:, None]
        self.mob_step = torch.tensor([[0.0] * 2, [KEY_SPEED, KEY_SPEED], [1.0, 1.0]], **f32)[None]
        self.key_limits = torch.tensor([[H + KEY_R], [float(KEY_LIFE)]], **f32)  # a key goes above these (y, age)
        self.no_key = torch.tensor([[0.0], [PARK], [99.0]], **f32)[None]  # [1, 3, 1]

        # generation tables
        self.presents = torch.tensor([[i + 0.5 for i in range(10)], [H - 0.5] * 10, [0.5] * 10, [0.5] * 10], **f32)
        self.row_ids = torch.arange(NUM_ROWS, **i64)
        self.tile_k = torch.arange(TILES_PER_ROW, **f32)
        self.cand_k = torch.arange(CAND, **i64)
        self.later = torch.ones(C, C, **f32).tril(-1)  # [j, i]: i is placed before j
        self.item_j = torch.cat([torch.arange(self.num_fruit, **i64), torch.arange(self.num_treat, **i64)])
        self.is_fruit = torch.arange(C, **i64) < self.num_fruit
        self.item_tex0 = torch.where(self.is_fruit, tex_fruit0, tex_treat0)
        self.num_themes = torch.where(self.is_fruit, len(config.fruit_sprites), len(config.treat_sprites))
        lo = torch.tensor([config.fruit_count[0], config.treat_count[0]], **i64)
        self.count_lo, self.count_span = lo, torch.tensor([config.fruit_count[1] + 1, config.treat_count[1] + 1], **i64) - lo
        # draws: agent x, 36 partition cells, 5 gaps, 5 left widths, 2 counts | 2 per candidate,
        # 1 theme per item | 1 theme per present box (last, so the draws before stay those of
        # every other config)
        self.head_draws = 1 + 36 + 2 * NUM_ROWS + 2
        self.item_theme_draws = slice(self.head_draws + 2 * C * CAND, self.head_draws + C * (2 * CAND + 1))
        self.present_theme_draws = slice(self.item_theme_draws.stop, self.item_theme_draws.stop + 10)
        self.num_draws = self.present_theme_draws.stop
        self._flat_base: dict[int, torch.Tensor] = {}
        self.agent_box = torch.tensor([0.0, AGENT_R, AGENT_R, AGENT_R], **f32)[None, :, None]
        self.fresh_mob = torch.tensor([[0.0, 0.0, 0.0], [PARK, PARK, AGENT_R], [99.0, 99.0, 0.0]], **f32)[None]

        # render tables: the drawing table's columns (see the module docstring) and its constant rows
        self.num_slots = S = NUM_CELLS + NUM_TILES + 10 + C + 3 + NUM_TILES
        self.wide0 = S - NUM_TILES
        cells = torch.tensor([[cx + 0.5, cy + 0.5, 0.5 + CELL_EPS, 0.5 + CELL_EPS] for cx, cy in CELLS], **f32)
        keys_agent = torch.tensor([[0.0, 0.0, 0.0], [PARK, PARK, AGENT_R], [KEY_R, KEY_R, AGENT_R], [KEY_R, KEY_R, AGENT_R]], **f32)
        order = list(range(self.wide0)) + list(range(NUM_CELLS, NUM_CELLS + NUM_TILES))  # wide tile k: as narrow tile k
        turns = [0.0] * (self.wide0 - 1) + [3.0] + [0.0] * NUM_TILES  # the robot is drawn turned by -π/2 (facing up)
        ryv = [0.0] * S  # filled below: ry + 5.5 (a conservative "in view" test), the agent always
        self.draw_const = torch.tensor([order, turns, ryv], **f32)  # rows ORDER, TURNS, VIEW
        self.draw_cells, self.draw_keys_agent = cells.T.contiguous(), keys_agent
        self.tex_head = torch.tensor([TEX_CELL] * NUM_CELLS + [TEX_BARRIER] * NUM_TILES, **f32)
        self.tex_tail = torch.tensor([TEX_KEY, TEX_KEY, TEX_AGENT] + [TEX_BARRIER] * NUM_TILES, **f32)
        self._last_views: _Views | None = None

    # ------------------------------------------------------------------------------------
    def generate(self, level_seed: torch.Tensor) -> dict[str, torch.Tensor]:
        """Fresh levels (§3.3), from this engine's stream or the real game's (config ``level_stream``)."""
        N = level_seed.shape[0]
        seed = level_seed.to(self.device)
        d = self._draws_procgen(seed) if self.config.level_stream == "procgen" else self._draws_hash(seed)
        ax, h, gap, w1, w2 = d["ax"], d["h"], d["gap"], d["w1"], d["w2"]
        walls = self._walls(d)
        if self.num_items:
            items, tex_items, _ = d["items"](ax, walls)
            boxes = torch.cat([walls, items], 2)
        else:
            boxes, tex_items = walls, self.item_tex0.expand(N, 0)
        tex_presents = TEX_PRESENT + d["present_themes"]

        mob = self.fresh_mob.repeat(N, 1, 1)
        mob[:, 0, 2] = ax
        t = torch.zeros(N, device=self.device, dtype=torch.int64)
        tiles = self._tiles(w1, w2, gap, h)
        keys_agent = self.draw_keys_agent.expand(N, 4, 3).clone()
        keys_agent[:, 0, 2] = ax
        boxes_drawn = torch.cat([self.draw_cells.expand(N, 4, NUM_CELLS), tiles[:, :, :NUM_TILES], boxes[:, :, 2 * NUM_ROWS:],
                                 keys_agent, tiles[:, :, NUM_TILES:]], 2)
        texture = torch.cat([self.tex_head.expand(N, -1), tex_presents.float(), tex_items.float(),
                             self.tex_tail.expand(N, -1)], 1)[:, None]
        consts = self.draw_const.expand(N, -1, -1).clone()
        consts[:, VIEW - ORDER] = boxes_drawn[:, RY] + 5.5
        consts[:, VIEW - ORDER, self.wide0 - 1] = float("inf")
        draw = torch.cat([boxes_drawn, texture, consts], 1)
        return {"t": t, "mob": mob, "fire": torch.zeros_like(t), "boxes": boxes, "draw": draw}

    def _walls(self, d: dict) -> torch.Tensor:
        """``[N, 4, 20]``: the barrier pieces (row by row, left then right) and the presents."""
        w1, w2, h = d["w1"], d["w2"], d["h"]
        N = h.shape[0]
        half = torch.stack([w1, w2], 2) * 0.5  # [N, 5, 2]
        pieces = torch.stack([torch.stack([half[..., 0], W - half[..., 1]], 2), h[..., None].expand(N, NUM_ROWS, 2),
                              half, torch.full_like(half, WALL_RY)], 1).view(N, 4, 2 * NUM_ROWS)
        return torch.cat([pieces, self.presents.expand(N, 4, 10)], 2)

    def procgen_draws(self, level_seed: torch.Tensor) -> torch.Tensor:
        """How many words of ``mt19937(level seed)`` the real game draws to make each level
        (where its generator stands after the reset): for checks against its saved state."""
        d = self._draws_procgen(level_seed.to(self.device))
        return d["items"](d["ax"], self._walls(d))[2] if self.num_items else d["words"]

    def _draws_hash(self, level_seed: torch.Tensor) -> dict:
        """The level's random choices from this engine's counter-based stream: one stream per
        level seed; each use of it (agent, walls, counts, item candidates, item themes) reads
        its own counter range, and the layout part comes first, so the agent and walls of a
        seed are the same in every FruitBot task. ``items`` places the items given the agent
        and the walls."""
        bits = rng.hash_bits(level_seed, STREAM, self.num_draws)  # [N, n]
        u = (bits >> 8).to(torch.float32) * (1.0 / (1 << 24))  # as rng.uniform
        part = ((bits[:, 1:37, None] % NUM_ROWS) == self.row_ids).sum(1)  # partition(36, 5)
        gap = (0.2 + 0.2 * u[:, 37:42]) * W
        w1 = u[:, 42:47] * (W - gap)
        return {"ax": u[:, 0] * (W - 2 * AGENT_R) + AGENT_R, "h": (part + 4).cumsum(1).to(torch.float32),  # the last row at 56
                "gap": gap, "w1": w1, "w2": W - w1 - gap,
                "items": lambda ax, walls: self._items(bits, u, ax, walls) + (None,),
                "present_themes": bits[:, self.present_theme_draws] % self.num_present_themes}

    def _draws_procgen(self, level_seed: torch.Tensor) -> dict:
        """The level's random choices as the real game draws them from ``mt19937(level seed)``
        (``BasicAbstractGame::game_reset``, then ``FruitBotGame::game_reset``), with a cursor
        per level: background (2 draws), agent x and y (y unused: the agent starts at the
        bottom), ``partition(36, 5)``, per wall row a door draw (only for a row more than 5
        above the previous one; easy mode has no doors), the gap and the left width; the
        fruit and treat counts, a theme per present box, the items (:meth:`_items_procgen`),
        then a theme per item (``items`` places them given the agent and the walls, and returns
        the words drawn in all). Float arithmetic as the C++ computes it: the gap fraction
        ``0.2f + .2 · rand01()`` in double, stored as float; the rest in float."""
        N, dev = level_seed.shape[0], self.device
        out = mt19937.Outputs(level_seed, 2, grow=self.sync_ok)
        if not self.sync_ok:  # the most any level can draw: every item placed on its 101st try
            out.extend(-(-(4 + 36 + 15 + 12 + self.num_items * (2 * ITEM_TRIES + 1)) // mt19937.N) - 2)
        zero = torch.zeros(N, dtype=torch.int64, device=dev)
        head = out.take(zero, 40)
        ax = randgen.rand01(head[:, 2]) * AGENT_SPAN + AGENT_R
        part = ((randgen.randn(head[:, 4:40, None], NUM_ROWS)) == self.row_ids).sum(1)  # partition(36, 5)
        dy = part + 4
        # per row: [door draw], gap, left width
        door = (dy > 5).long()
        rows = out.take(zero + 40, 3 * NUM_ROWS)
        offset = torch.cat([zero[:, None], (2 + door).cumsum(1)], 1)  # [N, 6]
        at = offset[:, :NUM_ROWS] + door
        pct = (PCT_MIN_F + 0.2 * randgen.rand01(rows.gather(1, at)).double()).float()
        gap = pct * W
        w1 = randgen.rand01(rows.gather(1, at + 1)) * (W - gap)
        cursor = 40 + offset[:, NUM_ROWS]
        tail = out.take(cursor, 12)
        counts = self.count_lo + tail[:, :2] % self.count_span  # [N, 2] fruits, treats
        present_themes = randgen.randn(tail[:, 2:12], self.num_present_themes)
        return {"ax": ax, "h": dy.cumsum(1).to(torch.float32), "gap": gap, "w1": w1, "w2": (W - w1) - gap,
                "items": lambda ax, walls: self._items_procgen(out, cursor + 12, counts, ax, walls),
                "present_themes": present_themes, "words": cursor + 12}

    def _items_procgen(self, out: mt19937.Outputs, cursor, counts, ax, walls):
        """Fruits then treats as the real game places them (``reposition``): one at a time, a
        1×1 box at ``rand_pos`` x then y, redrawn while it overlaps the agent, a barrier, a
        present or an item placed before, at most 100 times (the 101st draw stays, overlap or
        not). All 101 tries of an item are tested at once, and the cursor moves past the
        tries used. Then a theme per placed item, in list order (fruits, then treats). Returns
        the boxes, the textures and where the cursor ends."""
        N, C, dev = ax.shape[0], self.num_items, self.device
        live = self.item_j < torch.where(self.is_fruit, counts[:, :1], counts[:, 1:])  # [N, C]
        # what a try may not overlap: barriers, presents, the agent, then the item slots (parked
        # until placed); overlap ⟺ max(|dx| − (rx + 0.5), |dy| − (ry + 0.5)) < 0, as the original's
        # float32 |dx| < rx + 0.5 and |dy| < ry + 0.5 (the sign of a float difference is exact)
        items = torch.tensor([0.0, PARK, 0.5, 0.5], device=dev)[None, :, None].expand(N, 4, C)
        obst = torch.cat([walls, self.agent_box.expand(N, 4, 1), items], 2).clone()
        obst[:, 0, walls.shape[2]] = ax
        first_item = walls.shape[2] + 1
        ox, oy = obst[:, None, 0], obst[:, None, 1]  # [N, 1, M]
        reach_x, reach_y = obst[:, None, 2] + 0.5, obst[:, None, 3] + 0.5
        scale = torch.tensor([W - 1, H - 1], device=dev)
        tries = torch.arange(ITEM_TRIES, device=dev)
        for i in range(C):
            w = out.take(cursor, 2 * ITEM_TRIES).view(N, ITEM_TRIES, 2)
            cand = randgen.rand01(w) * scale + 0.5  # [N, T, 2]: rand_pos(0.5, 0, W | H)
            gap = (cand[..., :1] - ox).abs_().sub_(reach_x)  # [N, T, M]
            torch.maximum(gap, (cand[..., 1:] - oy).abs_().sub_(reach_y), out=gap)
            hit = gap.amin(2) < 0
            k = torch.where(hit, ITEM_TRIES - 1, tries).amin(1)  # first free try, else the last
            xy = torch.where(live[:, i, None], cand.gather(1, k[:, None, None].expand(N, 1, 2))[:, 0], PARK)
            obst[:, 0:2, first_item + i] = xy
            cursor = torch.where(live[:, i], cursor + 2 * (k + 1), cursor)
        xy = obst[:, 0:2, first_item:]
        # themes: one word per placed item, in list order (the live fruits, then the live treats)
        rank = live.long().cumsum(1) - 1
        theme = randgen.randn(out.take(cursor, C).gather(1, rank.clamp(min=0)), self.num_themes)
        tex = self.item_tex0 + theme
        r = self.tex_radii[tex]  # [N, C, 2]
        return torch.stack([xy[:, 0], xy[:, 1], r[..., 0], r[..., 1]], 1), tex, cursor + live.sum(1)

    def _tiles(self, w1, w2, gap, h):
        """Barrier tiles (§1.10.4, tile ratio 1): [N, 4, 2·70].

        A row has at most 14 tiles: floor(w1/0.6) + floor(w2/0.6) ≤ 13 as w1 + w2 ≤ 8, plus
        one when a piece is narrower than 0.6 (it still gets a tile)."""
        n1 = torch.clamp(torch.floor(w1 / (2 * WALL_RY)), min=1)[..., None]  # [N, 5, 1]
        n2 = torch.clamp(torch.floor(w2 / (2 * WALL_RY)), min=1)[..., None]
        k = self.tile_k
        left = k < n1  # [N, 5, 14]
        width = torch.where(left, w1[..., None] / n1, w2[..., None] / n2)
        x = torch.where(left, k + 0.5, k - n1 + 0.5) * width + torch.where(left, 0.0, (w1 + gap)[..., None])
        y = torch.where(k < n1 + n2, h[..., None], PARK)
        rx = width * 0.5
        wide = rx > NARROW_RX
        yy = torch.stack([torch.where(wide, PARK, y), torch.where(wide, y, PARK)], 1)  # [N, 2, 5, 14]
        tiles = torch.stack([x[:, None].expand_as(yy), yy, rx[:, None].expand_as(yy), torch.full_like(yy, WALL_RY)], 1)
        return tiles.view(h.shape[0], 4, 2 * NUM_TILES)

    def _items(self, bits, u, ax, walls):
        """Fruits then treats by vectorised rejection sampling (§3.3 steps 4, 6, 7).

        Each item has CAND candidate 1×1 boxes; a candidate is admissible when it misses the
        agent, the barriers and the presents, and an item first takes its first admissible
        one. Then, for ROUNDS rounds, every item that overlaps a live item placed before it
        moves on to its next admissible candidate; that is the original's "redraw until free
        of everything placed before". An item with no candidate left keeps the last one, as
        the original keeps its 100th draw. An item still overlapping an earlier one after the
        rounds is dropped (never seen in 20,000 levels of any built-in task). Boxes are then shrunk to the
        sprite's aspect ratio."""
        N, C, K = bits.shape[0], self.num_items, CAND
        hd = self.head_draws
        counts = self.count_lo + bits[:, hd - 2: hd] % self.count_span  # [N, 2] fruits, treats
        live = self.item_j < torch.where(self.is_fruit, counts[:, :1], counts[:, 1:])  # [N, C]

        cx = u[:, hd: hd + C * K].view(N, C, K) * (W - 1) + 0.5  # rand_pos(0.5, 0, W)
        cy = u[:, hd + C * K: hd + 2 * C * K].view(N, C, K) * (H - 1) + 0.5  # rand_pos(0.5, 0, H)
        # admissible: misses the barrier pieces and the agent (one box list), and the presents (y ≤ 58.5)
        obst = torch.cat([walls[:, :, :2 * NUM_ROWS], self.agent_box.expand(N, 4, 1)], 2)  # [N, 4, 11]
        obst[:, 0, -1] = ax
        o = obst[:, :, None, None, :]  # [N, 4, 1, 1, 11]
        # overlap ⟺ max(|dx| − (rx + 0.5), |dy| − (ry + 0.5)) < 0 (the sign of a float difference is exact)
        gap = (cx[..., None] - o[:, 0]).abs_().sub_(o[:, 2] + 0.5)
        torch.maximum(gap, (cy[..., None] - o[:, 1]).abs_().sub_(o[:, 3] + 0.5), out=gap)
        ok = ~((gap.amin(-1) < 0) | (cy > H - 1.5))  # [N, C, K]
        first = torch.where(ok, self.cand_k, K).flip(-1).cummin(-1).values.flip(-1)  # first admissible ≥ k
        nxt = torch.cat([first[..., 1:], torch.full_like(first[..., :2], K)], -1).view(-1)  # first admissible > k
        ptr = first[..., 0]
        flat_xy = torch.stack([cx, cy], -1)
        flat_xy = torch.cat([flat_xy, flat_xy[:, :, -1:]], 2).view(-1, 2)  # candidate K repeats the last draw
        base = self._flat_base.get(N)
        if base is None:
            base = self._flat_base[N] = torch.arange(N * C, device=self.device).view(N, C) * (K + 1)
        blocker = self.later * live[:, None, :]  # [N, j, i]: i is live and placed before j
        for r in range(ROUNDS + 1):
            idx = (base + ptr).view(-1)
            xy = flat_xy.index_select(0, idx).view(N, C, 2)
            x, y = xy[..., 0], xy[..., 1]
            d = (x[:, :, None] - x[:, None, :]).abs_()  # [N, j, i]
            torch.maximum(d, (y[:, :, None] - y[:, None, :]).abs_(), out=d)
            clash = d.lt_(1.0).mul_(blocker).amax(2) > 0
            if r == ROUNDS or (self.sync_ok and not bool(clash.any())):
                break  # usually after 1-3 rounds: checking costs less than the rounds it saves
            ptr = torch.where(clash, nxt.index_select(0, idx).view(N, C), ptr)

        theme = bits[:, self.item_theme_draws] % self.num_themes
        tex = self.item_tex0 + theme
        r = self.tex_radii[tex]  # [N, C, 2]
        y = torch.where(live & ~clash, xy[..., 1], PARK)
        return torch.stack([xy[..., 0], y, r[..., 0], r[..., 1]], 1), tex

    # ------------------------------------------------------------------------------------
    def step(self, state, action, inplace: bool = False):
        t = state["t"] + 1
        mob = state["mob"]
        x, vx = mob[:, 0, 2], mob[:, 2, 2]

        # lateral velocity, then four border-clamped sub-moves (§1.3, §1.4)
        vx = torch.add(self.accel.index_select(0, action), vx, alpha=0.5).double().mul_(0.9).float()
        q = vx * 0.25
        snap = torch.where(q > 0, _SNAP_HI, _SNAP_LO)
        blocked = torch.zeros_like(vx)
        for _ in range(4):
            nx = x + q
            b = nx.clamp(_X_LO, _X_HI) != nx
            x = torch.where(b, snap, nx)
            blocked += b
        y = self.heights.index_select(0, t)
        mover = torch.stack([x, y, vx.mul_(blocked.mul_(-0.25).add_(1.0))], 1)  # the agent: x, y, vx

        # keys move up and age (§1.5); then one overlap test of keys and agent with every box:
        # overlap ⟺ max(|dx| − (rx + r), |dy| − (ry + r)) < 0 (the sign of a float difference is exact)
        keys = mob[:, :, :2] + self.mob_step
        boxes = state["boxes"]
        reach = boxes[:, 2:, None] + self.mob_radius  # [N, 2, 3, M]
        px, py = torch.cat([keys[:, :2], mover[:, :2, None]], 2).unbind(1)  # [N, 3] each
        gap = (boxes[:, None, 0] - px[:, :, None]).abs_().sub_(reach[:, 0])
        torch.maximum(gap, (boxes[:, None, 1] - py[:, :, None]).abs_().sub_(reach[:, 1]), out=gap)
        hit = torch.lt(gap, 0.0, out=gap)  # [N, 3, M] float 0/1
        nb = 2 * NUM_ROWS
        key_gone = torch.maximum(hit[:, :2, :nb].amax(2), (keys[:, 1:] - self.key_limits).amax(1)) > 0  # [N, 2]
        hit = hit[:, 2]  # the agent's
        reward = (hit * self.box_reward).sum(1)
        wall = hit[:, :nb].amax(1) > 0
        complete = hit[:, nb: nb + 10].amax(1) > 0
        if self.finish_once:
            reward = torch.add(reward, complete, alpha=self.config.present_reward)
        if self.config.survival_bonus and self.config.survival_bonus_on_death:  # every step, a wall hit included
            reward = reward + self.config.survival_bonus
        elif self.config.survival_bonus:
            reward = torch.add(reward, ~wall, alpha=self.config.survival_bonus)
        draw = state["draw"] if inplace else state["draw"].clone()
        eaten = hit[:, nb + 10:]
        if not self.sync_ok or bool(eaten.any()):
            eaten = eaten > 0
            boxes = boxes.clone()
            boxes[:, 1, nb + 10:].masked_fill_(eaten, PARK)
            self._views(draw).y_items.masked_fill_(eaten, PARK)

        # throw a key (action 9) at most every 8 steps, from the agent's centre (§3.5 step 7)
        keys = torch.where(key_gone[:, None], self.no_key, keys)
        throw = (action == 9) & (t - state["fire"] >= KEY_COOLDOWN)
        thrown = torch.cat([keys[:, :, 1:], torch.cat([mover[:, :2], torch.zeros_like(x)[:, None]], 1)[..., None]], 2)
        keys = torch.where(throw[:, None, None], thrown, keys)
        mob = torch.cat([keys, mover[..., None]], 2)
        self._views(draw).xy_keys_agent.copy_(mob[:, :2])

        new_state = {"t": t, "mob": mob, "fire": torch.where(throw, t, state["fire"]), "boxes": boxes, "draw": draw}
        return new_state, reward, wall | complete, complete

    # ------------------------------------------------------------------------------------
    def camera(self, state):
        return W / 2, state["mob"][:, 1, 2] + (W / 2 - 2 * AGENT_R), SCALE

    def _views(self, draw: torch.Tensor) -> "_Views":
        views = self._last_views
        if views is None or views.draw is not draw:
            views = self._last_views = _Views(self, draw)
        return views

    def sprites(self, state):
        v = self._views(state["draw"])
        cy = state["mob"][:, 1, 2:] + (W / 2 - 2 * AGENT_R)  # the view spans cy ± 5
        torch.lt((v.y_main - cy).abs_(), v.view_main, out=v.main.visible)
        torch.lt((v.y_wide - cy).abs_(), v.view_wide, out=v.wide.visible)
        # wide tiles are rare (a piece 1.09-1.2 units wide); skip their batch when none is in view
        return [v.main, v.wide] if not self.sync_ok or bool(v.wide.visible.any()) else [v.main]


class _Views:
    """Views of one drawing table (made once per table: VecGame updates one in place) and the
    sprite batches over it: everything but the wide tiles with an 8-px patch, which covers any
    box up to 7 px wide; the wide tiles with a 10-px patch."""

    def __init__(self, game: Fruitbot, draw: torch.Tensor):
        self.draw = draw
        n, w0 = draw.shape[0], game.wide0
        items = slice(NUM_CELLS + NUM_TILES + 10, w0 - 3)
        self.y_items, self.xy_keys_agent = draw[:, Y, items], draw[:, X:Y + 1, w0 - 3:w0]
        self.y_main, self.view_main = draw[:, Y, :w0], draw[:, VIEW, :w0]
        self.y_wide, self.view_wide = draw[:, Y, w0:], draw[:, VIEW, w0:]

        def batch(cols, patch, turns):
            return SpriteBatch(x=draw[:, X, cols], y=draw[:, Y, cols], rx=draw[:, RX, cols], ry=draw[:, RY, cols],
                               texture=draw[:, TEXTURE, cols], order=draw[:, ORDER, cols],
                               visible=torch.empty(draw[:, Y, cols].shape, dtype=torch.bool, device=draw.device),
                               patch=patch, quarter_turns=draw[:, TURNS, cols] if turns else 0)
        self.main, self.wide = batch(slice(0, w0), PATCH, True), batch(slice(w0, None), WIDE_PATCH, False)
