"""StarPilot (Procgen, distribution mode "easy") as a batched torch program.

Rules: ``procgen-games-spec.md`` §2 (and §1 for the shared engine); the task config
(``envs.config.StarpilotConfig``) selects the variants of §5.1-5.3.

State (every tensor has a leading ``[N]`` environment dimension):

* ``t``       int64 ``[N]``: steps taken in this episode.
* ``tab``     float32 ``[N, ROWS, COLS]``: one column per entity slot, one row per field
  (planar, so that every field of every entity is a contiguous ``[N, COLS]`` plane, and a
  block of adjacent rows of a block of columns is written in one operation). Columns:

  - 0: the agent;
  - 1..128: enemy bullets. The ship with schedule index i fires (once) into column
    ``1 + 64·((i >> 6) & 1) + (i & 63)``: a ship fires ≤ 81 steps after it spawns, its
    bullet leaves the world ≤ 47 steps later, and the ship 128 places later in the
    schedule spawns ≥ 230 steps later, so two bullets never share a column;
  - 129..192: the ship ring. Ship i lives in column ``129 + (i & 63)``: 64 consecutive
    ships span ≥ 100 steps of spawn times, and a ship and its death explosion are gone
    86 steps after it spawns;
  - 193: a dummy ship column, never alive, target of masked-out scatters;
  - 194..219: player bullets. The bullet fired at step t lives in column ``194 + t % 26``
    (one per step at most; a bullet and its hit spark are gone ≤ 26 steps after it was fired);
  - 220..284: the death explosion of ship column c (dummy included) in column c + 91;
  - 285..310: the hit spark of player-bullet column c in column c + 91;
  - 311: the finish rocket.

  Rows: position and velocity, ``ALIVE`` (0 no, 1 yes, 2 a ship killed this step: still
  drawn and still lethal during the next step, then removed), creation step ``BORN`` and
  ``SUB`` (creation order within a step: sparks, the enemy phase newest ship first,
  releases, bullet, rocket), the sprite's rotation as ``COS``/``SIN``, ``TEX`` its texture,
  ``ORDER`` the draw order derived from ``BORN`` and ``SUB`` (exact in float32), ship data
  (absolute fire step, spawn rank, ring generation, health). An explosion copies its
  host's centre and velocity when it is created and then moves on its own; its texture is
  its frame. The rocket keeps its launch x in ``RANK`` and ``AGENT_R`` + its half-width in ``HP``.
* ``sched``   float32 ``[N, ROWS, 256]``: every ship of the level, sorted by spawn time, as
  the ``tab`` column it is released into; ``sched_t`` int64 ``[N, 256]`` the spawn steps
  (512 entries instead of 256 for a level end after step 500, see ``level_end_step``);
  ``ptr`` int64 ``[N]`` how many have been released.

All randomness is drawn at ``generate`` from the level seed; ``step`` is deterministic.
The step is written for few tensor operations (at 64 environments their number, not their
size, is the cost): masks are float 0/1 rows written by comparisons with a float ``out``,
new entities are assembled in scratch buffers and scattered into their columns, and
``step(..., inplace=True)`` (what ``VecGame`` uses) updates the one table through views
made once per table. Where reading data on the host is free (``sync_ok``: the CPU), the
bullet-ship test and the enemy fire touch only live bullets and firing ships; otherwise
(``sync_ok = False``) dense forms without data-dependent shapes compute the same values.
"""

from __future__ import annotations

import math

import torch

from envs import mt19937, randgen, rng, stdsort
from envs.config import StarpilotConfig
from envs.render import SpriteBatch, TextureSpec

W = 16.0  # world side
HALF = W / 2
MAXSPEED = 0.75
AGENT_R, SHIP_R, BULLET_R = 0.4, 0.5, 0.4
SHIP_SPEED = 0.75 * 0.4  # the original's speed factor × 0.4
SHIP_SPEED_F = float(torch.tensor(0.75) * torch.tensor(0.4))  # the same in float32, as the original computes it
HALF_PI_F = float(torch.tensor(math.pi / 2, dtype=torch.float32))
AGENT_SPAN = float(torch.tensor(W) - torch.tensor(2 * AGENT_R))  # float32 16 − 0.8
ENEMY_BULLET_SPEED = 0.5
PLAYER_BULLET_SPEED = 0.8
ROCKET_SPEED = 0.2
ROCKET_TIME = 500  # the stock level end (config ``level_end_step``)
ENTRY_X = 16.5
SHIP_HEALTH = 2
MAX_GROUPS = 50  # group starts are ≥ 11, ≥ 10 apart and ≤ 500: at most 49 groups (more for a later level end)
MAX_GROUP_SIZE = 5
SCHEDULE = 256  # ≥ 50 × 5 ship entries (more for a later level end)
NEVER = 1 << 40  # spawn step of an empty schedule entry
EXPLOSION_FRAMES = 5
HALF_PI = math.pi / 2
# the sprites of the agent, ships and player bullets are turned by a quarter (the float32 π/2)
QUARTER_COS = float(torch.cos(torch.tensor(HALF_PI, dtype=torch.float32)))
QUARTER_SIN = float(torch.sin(torch.tensor(HALF_PI, dtype=torch.float32)))

# columns
A = 0
EB0, EB_N = 1, 128
SH0, SH_N = 129, 64
DUMMY = SH0 + SH_N
PB0, PB_N = DUMMY + 1, 26
HOST_N = SH_N + 1 + PB_N  # columns that host explosions: ships, dummy, player bullets
DX0 = PB0 + PB_N  # death explosions (of the ship columns and the dummy)
SX0 = DX0 + SH_N + 1  # hit sparks (of the player-bullet columns)
ROCKET = SX0 + PB_N
COLS = ROCKET + 1
EXPLODE = DX0 - SH0  # explosion column = host column + EXPLODE
EB = slice(EB0, EB0 + EB_N)
SH = slice(SH0, DUMMY + 1)  # ship ring plus the dummy (65 columns)
PB = slice(PB0, PB0 + PB_N)
DX = slice(DX0, SX0)
SX = slice(SX0, ROCKET)
EXPL = slice(DX0, ROCKET)
MAIN = slice(0, DX0)  # agent, bullets, ships: drawn with a 5-px patch
LETHAL = slice(EB0, DUMMY)  # enemy bullets and ships
MOVING = slice(EB0, DX0)  # what can leave the world: bullets and ships (the agent is clamped)

# rows
X, Y, VX, VY, ALIVE, BORN, SUB, COS, SIN, TEX, ORDER, FIRE, RANK, GEN, HP = range(15)
ROWS = 15
NO_EXPLOSION = -100.0  # BORN of an explosion column that holds none

# creation order within a step (SUB), offset so that ORDER stays ≥ 0
SUB_BASE = 1 << 22
SUB_ENEMY = SUB_BASE + 64  # + 2·(newest-first rank) + (0 bullet, 1 death explosion); sparks below
SUB_RELEASE = SUB_BASE + 2048  # + rank among the ships spawning together
SUB_PLAYER_BULLET = SUB_BASE + 3072
SUB_ROCKET = SUB_PLAYER_BULLET + 1
ORDER_STEP = 4096  # ORDER = SUB + ORDER_STEP · clamp(BORN − t, −1024, 1)
AGENT_BORN = 1.0e9  # the agent is drawn above everything

# level generation: one rng stream, its draws sliced by use
S_LEVEL = 0


def max_groups(level_end: int) -> int:
    """Group slots a level needs: starts are ≥ 11 and ≥ 10 apart, and none is after ``level_end``.
    Never fewer than ``MAX_GROUPS``, so that every level end up to 500 draws the same numbers."""
    return max(MAX_GROUPS, (level_end - 11) // 10 + 1)


def draw_layout(groups: int) -> dict:
    """Where each use reads its draws: agent start, per group, per ship, rocket theme."""
    g, s = groups, groups * MAX_GROUP_SIZE
    layout = {"agent": slice(0, 2)}
    layout.update({k: slice(2 + i * g, 2 + (i + 1) * g) for i, k in enumerate(["gap", "size", "theme", "y"])})
    layout.update({k: slice(2 + 4 * g + i * s, 2 + 4 * g + (i + 1) * s) for i, k in enumerate(["fire", "angle", "straight"])})
    layout["rocket"] = 2 + 4 * g + 3 * s
    layout["draws"] = layout["rocket"] + 1
    return layout


_L = draw_layout(MAX_GROUPS)  # the stock layout
D_AGENT, D_GAP, D_SIZE, D_THEME, D_Y = _L["agent"], _L["gap"], _L["size"], _L["theme"], _L["y"]
D_FIRE, D_ANGLE, D_STRAIGHT, D_ROCKET, DRAWS = _L["fire"], _L["angle"], _L["straight"], _L["rocket"], _L["draws"]

ROCKET_PIXELS = {"spaceRockets_001.png": (122, 374), "spaceRockets_002.png": (157, 309),
                 "spaceRockets_003.png": (118, 315), "spaceRockets_004.png": (136, 369)}


class Starpilot:
    """StarPilot, easy mode; ``config`` sets rewards, survival bonus, who may fire, whether
    and in what group sizes enemies come, the level end and sprite sets."""

    def __init__(self, config: StarpilotConfig, device: torch.device):
        self.config = c = config
        self.device = device = torch.device(device)
        self.sync_ok = device.type == "cpu"  # data-dependent shortcuts cost nothing there
        # the first ships enter at step ≥ 11 and can touch the agent one step later; the
        # rocket, entering at the level end, one step after that
        self.level_end = c.level_end_step
        self.min_episode_length = min(c.timeout, 12, self.level_end + 1)
        self.max_groups = max_groups(self.level_end)
        self.schedule = max(SCHEDULE, 64 * math.ceil(self.max_groups * MAX_GROUP_SIZE / 64))
        self.layout = draw_layout(self.max_groups)
        self.n_enemy, self.n_rocket = len(c.enemy_sprites), len(c.rocket_sprites)
        # textures: agent, player bullet, enemy bullet, ships…, rockets…, death and spark frames
        self.textures = [TextureSpec("playerShip2_blue.png", 0), TextureSpec("towerDefense_tile295.png", 1),
                         TextureSpec("towerDefense_tile296.png", 2)]
        self.tex_ship = len(self.textures)
        self.textures += [TextureSpec(f, 4, i) for i, f in enumerate(c.enemy_sprites)]
        self.tex_rocket = len(self.textures)
        self.textures += [TextureSpec(f, 9, i) for i, f in enumerate(c.rocket_sprites)]
        self.tex_death = len(self.textures)
        self.textures += [TextureSpec(f"explosion{i + 1}.png", 54 + i) for i in range(EXPLOSION_FRAMES)]
        self.tex_spark = len(self.textures)
        self.textures += [TextureSpec(f"explosion{i + 1}.png", 54 + i) for i in range(EXPLOSION_FRAMES)]

        f32 = dict(device=device, dtype=torch.float32)
        # action → (0.5·maxspeed·ax, 0.5·maxspeed·ay, bullet direction: 0 none, ±1) (spec §1.2)
        table = [((a // 3 - 1) * 0.5 * MAXSPEED, (a % 3 - 1) * 0.5 * MAXSPEED, 0.0) if a <= 8 else
                 (0.0, 0.0, (-1.0 if a == 10 else 1.0) if c.player_can_fire else 0.0) for a in range(15)]
        self.action_table = torch.tensor(table, **f32)
        rocket_rx = [8.0 * ROCKET_PIXELS[f][0] / ROCKET_PIXELS[f][1] for f in c.rocket_sprites]
        self.rocket_rx = torch.tensor(rocket_rx, **f32)
        # half-extents by texture, for drawing: explosions grow by 1.4 per frame
        size = [AGENT_R, BULLET_R, BULLET_R] + [SHIP_R] * self.n_enemy
        growth = 1.4 ** torch.arange(EXPLOSION_FRAMES, **f32)
        rx = torch.cat([torch.tensor(size, **f32), self.rocket_rx, (0.5 * SHIP_R) * growth, 0.2 * growth])
        ry = torch.cat([torch.tensor(size, **f32), torch.full((self.n_rocket,), HALF, **f32),
                        (0.5 * SHIP_R) * growth, 0.2 * growth])
        self.extent_by_texture = torch.stack([rx, ry])  # [2, T]
        # per column: lethal overlap distance (agent r + entity r; 0 = harmless), removal limit
        lethal = torch.zeros(COLS, **f32)
        lethal[EB] = AGENT_R + BULLET_R
        lethal[SH0:DUMMY] = AGENT_R + SHIP_R
        self.lethal = lethal[LETHAL]
        radius = torch.full((COLS,), BULLET_R, **f32)
        radius[SH] = SHIP_R
        self.keep_limit = (HALF + radius)[MOVING]  # completely outside ⟺ |x − 8| > 8 + r or |y − 8| > 8 + r
        self.eb_column = torch.arange(EB0, EB0 + SH_N, **f32)
        self.expl_tex = torch.full((HOST_N,), float(self.tex_spark), **f32)
        self.expl_tex[:SH_N + 1] = self.tex_death
        self.quarter_steps = 0.25 * torch.arange(1, 5, **f32)  # exact: 0.25, 0.5, 0.75, 1
        self.release_k = torch.arange(3, device=device)
        self.ship_key = torch.arange(1, SH_N + 2, **f32)  # slot + 1
        # the 98% box test against the border (§1.4), in coordinates centred on the world
        self.block = HALF - float(torch.tensor(0.98 * AGENT_R, dtype=torch.float32))
        self.patch_rocket = 2 * int(max(4.0 * float(self.rocket_rx.max()), 4.0 * HALF) + 0.5) + 1
        self._consts: dict = {}
        self._last_views: _Views | None = None
        self._rocket_live = False  # some level has reached the level end (last step; CPU only)

    def _const(self, key, make):
        value = self._consts.get(key)
        if value is None:
            value = self._consts[key] = make()
        return value

    # ------------------------------------------------------------------ generation
    def generate(self, level_seed: torch.Tensor) -> dict[str, torch.Tensor]:
        c, dev = self.config, self.device
        key = level_seed.to(device=dev, dtype=torch.int64)
        n = key.shape[0]
        G, J, SCHED = self.max_groups, MAX_GROUP_SIZE, self.schedule
        d = self._draws_procgen(key) if c.level_stream == "procgen" else self._draws_hash(key)
        starts, size, theme, y0, delay = d["starts"], d["size"], d["theme"], d["y"], d["delay"]
        j = torch.arange(J, device=dev)
        spawn = (starts[:, :, None] + 5 * j).reshape(n, G * J)  # ships of a group enter 5 steps apart
        valid = ((starts <= self.level_end)[:, :, None] & (j < size[:, :, None])).reshape(n, G * J)
        if not c.spawn_enemies:
            valid = torch.zeros_like(valid)

        # sort by spawn step (hash: stable, group order breaks ties; procgen: in the real game's
        # order), pad to the schedule length
        spawn = torch.where(valid, spawn, NEVER)
        perm = self._procgen_order(spawn) if c.level_stream == "procgen" else torch.sort(spawn, dim=1, stable=True)[1]
        spawn = spawn.gather(1, perm)
        spawn = torch.cat([spawn, spawn.new_full((n, SCHED - G * J), NEVER)], dim=1)
        perm = torch.cat([perm, perm.new_zeros(n, SCHED - G * J)], dim=1)
        group = lambda v: v[:, :, None].expand(n, G, J).reshape(n, G * J).gather(1, perm)  # noqa: E731
        ship = lambda v: v.gather(1, perm)  # noqa: E731
        # rank among the ships spawning in the same step (≤ 3: group starts are ≥ 10 apart)
        zero = spawn.new_zeros(n, 2)
        rank = (torch.cat([zero[:, :1], spawn[:, 1:] == spawn[:, :-1]], 1).long()
                + torch.cat([zero, spawn[:, 2:] == spawn[:, :-2]], 1).long())
        index = torch.arange(SCHED, device=dev).expand(n, SCHED)
        live = spawn < NEVER
        spawn_f = torch.where(live, spawn, 0).float()
        fire = spawn_f + ship(delay) if c.enemies_fire else torch.full_like(spawn_f, -1.0)
        rows = [None] * ROWS
        rows[X], rows[Y], rows[VX], rows[VY] = torch.full_like(spawn_f, ENTRY_X), group(y0), ship(d["vx"]), ship(d["vy"])
        rows[ALIVE], rows[BORN], rows[SUB] = torch.ones_like(spawn_f), spawn_f, SUB_RELEASE + rank.float()
        rows[COS], rows[SIN] = torch.full_like(spawn_f, QUARTER_COS), torch.full_like(spawn_f, QUARTER_SIN)
        rows[TEX], rows[ORDER] = (self.tex_ship + group(theme)).float(), torch.zeros_like(spawn_f)
        rows[FIRE], rows[RANK], rows[GEN] = fire, 4 * spawn_f + rank, ((index >> 6) & 1).float()
        rows[HP] = torch.full_like(spawn_f, SHIP_HEALTH)
        sched = torch.stack(rows, dim=1)

        theme_r = d["rocket"]
        rocket_rx = self.rocket_rx[theme_r]
        tab = self._blank(n).repeat(n, 1, 1)
        tab[:, X:Y + 1, A] = d["agent"]
        tab[:, TEX, ROCKET] = (self.tex_rocket + theme_r).float()
        tab[:, RANK, ROCKET] = W + rocket_rx  # launch x: the left edge on the right border
        tab[:, HP, ROCKET] = AGENT_R + rocket_rx  # touching distance
        return {"t": torch.zeros(n, dtype=torch.int64, device=dev), "tab": tab, "sched": sched,
                "sched_t": spawn, "ptr": torch.zeros(n, dtype=torch.int64, device=dev)}

    def _draws_hash(self, key: torch.Tensor) -> dict[str, torch.Tensor]:
        """The level's random choices from this engine's counter-based stream: every draw of
        the level in one call (independent 32-bit words), sliced into the uses below."""
        c, n = self.config, key.shape[0]
        G, J, SCHED, D = self.max_groups, MAX_GROUP_SIZE, self.schedule, self.layout
        bits = rng.hash_bits(key, S_LEVEL, D["draws"])
        uniform = lambda s: (bits[:, s] >> 8).float() * (1.0 / (1 << 24))  # noqa: E731  [0, 1), as rng.uniform
        randint = lambda s, lo, hi: lo + bits[:, s] % (hi - lo)  # noqa: E731  [lo, hi), as rng.randint
        angle = (uniform(D["angle"]) - 0.5) * HALF_PI
        angle = torch.where(randint(D["straight"], 0, 2) == 1, 0.0, angle)  # 50 %: straight
        # cos/sin on rows padded to the schedule length: a vectorised kernel then treats every
        # element alike, so a level does not depend on the batch it is generated in
        angle = torch.nn.functional.pad(angle, (0, SCHED - G * J))
        # groups: the first starts at 1 + U{10..29}, each next one U{10..29} later, while ≤ the
        # level end (500 in the stock game, §2.3)
        return {"starts": 1 + torch.cumsum(randint(D["gap"], 10, 30), dim=1),  # [n, G]
                "size": randint(D["size"], c.group_size[0], c.group_size[1] + 1),
                "theme": randint(D["theme"], 0, self.n_enemy), "y": 0.5 + 15.0 * uniform(D["y"]),
                "delay": randint(D["fire"], 10, 100),  # [n, G·J]
                "vx": (-SHIP_SPEED * torch.cos(angle))[:, :G * J], "vy": (SHIP_SPEED * torch.sin(angle))[:, :G * J],
                "agent": AGENT_R + (W - 2 * AGENT_R) * uniform(D["agent"]),
                "rocket": randint(D["rocket"], 0, self.n_rocket)}

    def _draws_procgen(self, key: torch.Tensor) -> dict[str, torch.Tensor]:
        """The level's random choices as the real game draws them from ``mt19937(level seed)``
        (``BasicAbstractGame::game_reset``, then ``StarPilotGame::add_spawners``), with a cursor
        per level: background (2 draws), agent x and y, the first group start; per group its
        type, size, theme and y, per ship its fire delay, angle, straight flag and a spawn-side
        draw, then the gap to the next group; the agent's theme; then one draw per step, and
        at the level end the rocket's theme.

        The type draw is not used: in easy mode every group is a FLYER group except when the
        word is exactly 0 (``rand01() · 3 ≤ 0``, probability 2**-32 per group), which this
        engine does not model. Themes (``randn(7)``, ``randn(4)`` in the real game) are the
        same words modulo this config's sprite counts."""
        c, dev, n = self.config, self.device, key.shape[0]
        G, J = self.max_groups, MAX_GROUP_SIZE
        per_group = 5 + 4 * J  # the most words a group draws
        words = 5 + G * per_group + 1 + self.level_end + 1
        out = mt19937.Outputs(key, -(-words // mt19937.N), grow=False)
        head = out.take(torch.zeros(n, dtype=torch.int64, device=dev), 5)
        agent = randgen.rand01(head[:, 2:4]) * AGENT_SPAN + AGENT_R
        t = 1 + randgen.randint(head[:, 4], 10, 30)
        cursor = torch.full((n,), 5, dtype=torch.int64, device=dev)
        lo, span = c.group_size[0], c.group_size[1] - c.group_size[0] + 1
        never = torch.full((n, G), self.level_end + 1, dtype=torch.int64, device=dev)
        starts, size, theme, y = never.clone(), torch.zeros_like(never), torch.zeros_like(never), torch.zeros(n, G, device=dev)
        ship = torch.zeros(n, G, J, 3, dtype=torch.int64, device=dev)
        for g in range(G):
            active = t <= self.level_end
            if self.sync_ok and not bool(active.any()):
                break
            # after a level's last group: zeros, as when the loop stops (unused, but the same levels either way)
            w = out.take(cursor, per_group) * active[:, None]
            starts[:, g] = torch.where(active, t, self.level_end + 1)
            size[:, g] = torch.where(active, lo + w[:, 1] % span, 0)
            theme[:, g] = randgen.randn(w[:, 2], self.n_enemy)
            y[:, g] = torch.where(active, randgen.rand01(w[:, 3]) * 15.0 + 0.5, 0.0)
            ship[:, g] = w[:, 4:4 + 4 * J].view(n, J, 4)[..., :3]
            gap = randgen.randint(w.gather(1, (4 + 4 * size[:, g])[:, None])[:, 0], 10, 30)
            t = torch.where(active, t + gap, t)
            cursor = torch.where(active, cursor + 5 + 4 * size[:, g], cursor)
        end = cursor + 1  # after the agent's theme
        rocket = randgen.randn(out.take(end + self.level_end, 1)[:, 0], self.n_rocket)
        # theta = (rand01() − 0.5) · k in double, stored as float; the velocity in double
        theta = ((randgen.rand01(ship[..., 1]).double() - 0.5) * HALF_PI_F).float()
        theta = torch.where(ship[..., 2] % 2 == 1, 0.0, theta).double().view(n, G * J)
        return {"starts": starts, "size": size, "theme": theme, "y": y,
                "delay": randgen.randint(ship[..., 0], 10, 100).view(n, G * J),
                "vx": (-torch.cos(theta) * SHIP_SPEED_F).float(), "vy": (torch.sin(theta) * SHIP_SPEED_F).float(),
                "agent": agent, "rocket": rocket, "words": end}

    def procgen_draws(self, level_seed: torch.Tensor) -> torch.Tensor:
        """How many words of ``mt19937(level seed)`` the real game draws to make each level
        (where its generator stands after the reset): for checks against its saved state."""
        return self._draws_procgen(level_seed.to(device=self.device, dtype=torch.int64))["words"]

    def _procgen_order(self, spawn: torch.Tensor) -> torch.Tensor:
        """``[n, G·J]`` indices of the ships (masked ``spawn``, ``NEVER`` where none) in the
        order the real game releases them: its spawn list (groups in order, ships in order)
        sorted by ``std::sort`` on descending spawn step, read from the back; then the empty
        entries. Replayed in Python on the host (off the CPU, a synchronisation)."""
        rows = []
        for row in spawn.tolist():
            ships = [k for k, s in enumerate(row) if s < NEVER]
            order = stdsort.sort_order([row[k] for k in ships], lambda a, b: a > b)
            rows.append([ships[k] for k in reversed(order)] + [k for k, s in enumerate(row) if s >= NEVER])
        return torch.tensor(rows, dtype=torch.int64, device=spawn.device).view(spawn.shape)

    def _blank(self, n: int) -> torch.Tensor:
        """``[1, ROWS, COLS]``: the table of a level before anything has happened."""
        def make():
            tab = torch.zeros(1, ROWS, COLS, device=self.device)
            tab[:, SUB] = SUB_BASE
            tab[:, ALIVE, A], tab[:, BORN, A] = 1.0, AGENT_BORN
            tab[:, COS, :DX0], tab[:, SIN, :DX0] = QUARTER_COS, QUARTER_SIN
            tab[:, COS, DX0:] = 1.0
            tab[:, TEX, EB], tab[:, TEX, PB] = 2.0, 1.0
            tab[:, SUB, PB] = SUB_PLAYER_BULLET
            tab[:, BORN, EXPL] = NO_EXPLOSION
            tab[:, TEX, EXPL] = self.expl_tex + (EXPLOSION_FRAMES - 1)
            tab[:, Y, ROCKET], tab[:, BORN, ROCKET], tab[:, SUB, ROCKET] = HALF, self.level_end, SUB_ROCKET
            tab[:, ORDER] = tab[:, SUB] + ORDER_STEP * torch.clamp(tab[:, BORN], -1024, 1)
            return tab
        return self._const("blank", make)

    # ------------------------------------------------------------------ one step (§2.5)
    def _views(self, tab: torch.Tensor) -> "_Views":
        """Views of ``tab`` (made once per table: VecGame updates one table in place)."""
        views = self._last_views
        if views is None or views.tab is not tab:
            views = self._last_views = _Views(self, tab)
        return views

    def step(self, state: dict[str, torch.Tensor], action: torch.Tensor, inplace: bool = False):
        """One step (§2.5). ``inplace`` updates ``state``'s tensors instead of copying them."""
        if not inplace:
            state = dict(state, t=state["t"].clone(), tab=state["tab"].clone(), ptr=state["ptr"].clone())
        # Masks are float 0/1 tensors written by comparisons with a float ``out``: on the CPU
        # that is several times cheaper than boolean tensors, ``where`` or mixed-dtype products.
        # New entities are assembled in scratch buffers and scattered into their columns.
        c = self.config
        v = self._views(state["tab"])
        t = state["t"].add_(1)
        b = t.shape[0]
        tfc = t.float()[:, None]
        act = self.action_table.index_select(0, action)

        # agent velocity (§1.3), then four border-clamped sub-steps (§1.4): the sub-steps that
        # are not blocked form a prefix; a blocked one snaps the agent to the wall
        vel = torch.add(act[:, :2], v.agent_v, alpha=0.5).mul_(0.9)
        sub = torch.addcmul((v.agent_xy - HALF)[..., None], vel[..., None], self.quarter_steps)
        free = sub.abs() < self.block  # [b, 2, 4]
        last = sub[..., 3]
        centred = torch.where(free[..., 3], last, last.clamp(AGENT_R - HALF, HALF - AGENT_R))

        # every other entity moves in a straight line
        v.xy.add_(v.vxy)
        agent = torch.add(centred, HALF, out=v.agent_xy)
        torch.mul(vel, free.sum(2), out=v.agent_v).mul_(0.25)
        ax, ay = v.agent_x, v.agent_y

        # collision pass (§1.7). The agent dies on touching a ship (a dying one too) or an
        # enemy bullet; touching the rocket (y span 0..16: only x matters) completes the level
        near = (v.x_lethal - ax).abs_()
        torch.maximum(near, (v.y_lethal - ay).abs_(), out=near)  # Chebyshev distance
        died = near.sub_(self.lethal).mul_(v.alive_lethal).amin(1) < 0
        rocket = self._rocket_live = not self.sync_ok or bool((t >= self.level_end).any())  # enters at the level end
        if rocket:
            complete = (v.x_rocket - agent[:, 0]).abs_() < v.reach_rocket * v.alive_rocket
        else:
            complete = torch.zeros(b, dtype=torch.bool, device=self.device)

        # each player bullet hits the newest overlapping ship that is not dying; key: the
        # ship's spawn rank (exact small integers in float32) · 128 + its slot + 1
        ok = torch.eq(v.alive_moving, 1.0, out=v.ok)  # alive and not dying
        key = torch.add(self.ship_key, v.rank_sh, alpha=128).mul_(v.ok_sh)
        if self.sync_ok:  # the CPU: only the live bullets, and only the hits
            hits = self._hits_sparse(v, tfc, key)
            any_hit = hits is not None
        else:
            gap = (v.x_pb - v.x_sh).abs_()  # [b, 26, 65]
            torch.maximum(gap, (v.y_pb - v.y_sh).abs_(), out=gap)
            best = gap.lt_(BULLET_R + SHIP_R).mul_(key[:, None, :]).amax(2).mul_(v.alive_pb)  # > 0: hit
            any_hit = True
            hit = best.clamp(0.0, 1.0)
            target = torch.remainder(best - 1.0, 128.0).clamp_(max=SH_N).long()  # no hit: the dummy
            hits = torch.zeros(b, SH_N + 1, device=self.device).scatter_add_(1, target, hit)
            # the spent bullet becomes a hit spark at its centre, moving with the ship it hit
            spark = v.spark_new
            spark[:, X:Y + 1].copy_(v.xy_pb)
            torch.gather(v.v_sh, 2, target[:, None, :].expand(b, 2, PB_N), out=spark[:, VX:VY + 1])
            spark[:, BORN].copy_(tfc)
            torch.sub(tfc + (SUB_BASE + 1), v.born_pb, out=spark[:, SUB])
            torch.lerp(v.spark_rows, spark, hit[:, None, :], out=v.spark_rows)
            v.ok_pb.sub_(hit)

        # removal (§1.7): marked (dying ships, spent bullets) or completely outside the world
        out = (v.x_moving - HALF).abs_()
        torch.maximum(out, (v.y_moving - HALF).abs_(), out=out)
        torch.le(out, self.keep_limit, out=v.alive_moving).mul_(ok)

        # enemy phase, newest ship first: fire once, fire_delay steps after spawning; then die
        ship_alive = v.alive_sh
        sub_t = tfc * 8 + (SUB_ENEMY + 6)  # SUB_ENEMY + 2·(4t + 3 − RANK) = sub_t − 2·RANK
        if c.enemies_fire and self.sync_ok:  # the CPU: only the ships that fire now (a few)
            self._fire_sparse(v, agent, tfc, sub_t)
        elif c.enemies_fire:
            new = v.eb_new  # rows X..SIN of the bullet of every ship; ships that do not fire: nothing
            fire = torch.eq(v.fire_ships, tfc, out=new[:, ALIVE]).mul_(v.alive_ships)
            new[:, X:Y + 1].copy_(v.xy_ships)
            d = torch.sub(agent[:, :, None], v.xy_ships, out=new[:, VX:VY + 1])  # towards the agent
            d.mul_((d * d).sum(1, keepdim=True).clamp_(min=1e-12).rsqrt_().mul_(ENEMY_BULLET_SPEED))
            new[:, BORN].copy_(tfc)
            torch.add(sub_t, v.rank_ships, alpha=-2, out=new[:, SUB])
            # the bullet sprite turned to its direction: cos = −vy/|v|, sin = −vx/|v|
            torch.mul(d.flip(1), -1.0 / ENEMY_BULLET_SPEED, out=new[:, COS:SIN + 1])
            # into column 1 + 64·generation + slot; ships that do not fire write into the dummy
            column = torch.add(self.eb_column, v.gen_ships, alpha=EB_N // 2).sub_(DUMMY).mul_(fire).add_(DUMMY)
            v.to_sin.scatter_(2, column.long()[:, None, :].expand(b, SIN + 1, SH_N), new)
        if any_hit:
            hp = v.hp_sh.sub_(hits)
            dead = torch.le(hp, 0.0, out=v.dead).mul_(ship_alive)
            kills = dead.sum(1)
            if not self.sync_ok or bool(kills.any()):
                ship_alive += dead  # 1 → 2: dying
                death = torch.cat([v.death_src, tfc.expand(b, SH_N + 1)[:, None],
                                   torch.add(sub_t + 1, v.rank_sh, alpha=-2)[:, None]], 1)
                torch.lerp(v.death_rows, death, dead[:, None, :], out=v.death_rows)

        # release the ships scheduled for this step (≤ 3) into their ring columns
        ptr = state["ptr"]
        cand = (ptr[:, None] + self.release_k).clamp_(max=self.schedule - 1)
        release = state["sched_t"].gather(1, cand) == t[:, None]
        slot = torch.where(release, cand & (SH_N - 1), DUMMY - SH0)[:, None, :].expand(b, ROWS, 3)
        v.ring.scatter_(2, slot, state["sched"].gather(2, cand[:, None, :].expand(b, ROWS, 3)))
        ptr += release.sum(1)

        # the player's bullet: one per step on a special action, from the agent's side, into
        # column 194 + t % 26
        if c.player_can_fire:
            direction = act[:, 2:]
            new = v.pb_new  # rows X..SIN; VY, SUB and COS are constant
            torch.add(ax, direction, alpha=BULLET_R, out=new[:, X:X + 1])
            new[:, Y:Y + 1].copy_(ay)
            torch.mul(direction, PLAYER_BULLET_SPEED, out=new[:, VX:VX + 1])
            shot = torch.abs(direction, out=new[:, ALIVE:ALIVE + 1])
            new[:, BORN:BORN + 1].copy_(tfc)
            torch.neg(direction, out=new[:, SIN:SIN + 1])
            # no shot: the column is written all the same, as a dead bullet (it holds none: a
            # bullet is gone ≤ 21 steps after it was fired, 26 steps before the column's turn)
            column = torch.remainder(t, PB_N).add_(PB0)
            v.to_sin.scatter_(2, column[:, None, None].expand(b, SIN + 1, 1), new[:, :, None])
        v.alive_dummy.fill_(0.0)

        # the finish rocket enters at the level end (step 500 in the stock game) with its left
        # edge on the right border
        if rocket:
            launch = (t == self.level_end)[:, None]
            torch.where(launch, torch.cat([v.launch_x, v.k_rocket], 1), v.rocket_rows, out=v.rocket_rows)

        # explosions: visible for 5 frames, one texture per frame; then everyone's draw order
        age = tfc - v.born_expl
        torch.lt(age, EXPLOSION_FRAMES, out=v.alive_expl)
        torch.add(self.expl_tex, age.clamp_(0, EXPLOSION_FRAMES - 1), out=v.tex_expl)
        torch.add(v.sub, torch.sub(v.born, tfc).clamp_(-1024, 1), alpha=ORDER_STEP, out=v.order)

        reward = c.kill_reward * kills if any_hit else torch.zeros(b, device=self.device)
        if c.finish_reward and rocket:
            reward = torch.add(reward, complete, alpha=c.finish_reward)
        if c.survival_bonus and c.survival_bonus_on_death:  # every step, the agent's death included
            reward = reward + c.survival_bonus
        elif c.survival_bonus:
            reward = torch.add(reward, ~died, alpha=c.survival_bonus)
        return state, reward, died | complete, complete

    def _hits_sparse(self, v: "_Views", tfc, key):
        """The bullet-ship hits of ``step`` for the live player bullets only (≈ a third of
        the slots), and the sparks and ``ok`` updates for the actual hits only; returns the
        hits per ship column ``[N, 65]`` or ``None`` when there are none. Same arithmetic as
        the dense form."""
        live = v.alive_pb.nonzero()  # [K, 2]: environment, bullet slot
        if not live.shape[0]:
            return None
        env, slot = live[:, 0], live[:, 1]
        base = torch.add(slot, env, alpha=ROWS * COLS).add_(PB0)  # flat index of (env, row 0, column)
        bxy = v.flat.index_select(0, (base + v.row_offsets[:2]).view(-1)).view(2, -1)
        gap = (bxy[0, :, None] - v.x_sh2.index_select(0, env)).abs_()  # [K, 65]
        torch.maximum(gap, (bxy[1, :, None] - v.y_sh2.index_select(0, env)).abs_(), out=gap)
        best = gap.lt_(BULLET_R + SHIP_R).mul_(key.index_select(0, env)).amax(1)
        h = best.nonzero().squeeze(1)
        if not h.shape[0]:
            return None
        env, slot, base, bxy = env.index_select(0, h), slot.index_select(0, h), base.index_select(0, h), bxy.index_select(1, h)
        target = torch.remainder(best.index_select(0, h) - 1.0, 128.0).long()  # the ship slot hit
        hits = torch.zeros(v.tab.shape[0], SH_N + 1, device=self.device)
        hits.index_put_((env, target), v.one.expand(env.shape[0]), accumulate=True)
        # the spent bullet becomes a hit spark at its centre, moving with the ship it hit
        ship = torch.add(target, env, alpha=ROWS * COLS).add_(SH0)
        vxy = v.flat.index_select(0, (ship + v.row_offsets[2:4]).view(-1)).view(2, -1)
        tf = tfc.view(-1).index_select(0, env)
        born = v.flat.index_select(0, base + BORN * COLS)
        rows = torch.stack([bxy[0], bxy[1], vxy[0], vxy[1], tf, tf, (tf + (SUB_BASE + 1)).sub_(born)], 1)  # X..SUB
        v.flat.index_put_(((base + EXPLODE)[:, None] + v.spark_offsets,), rows)
        v.ok_flat.index_put_((torch.add(slot, env, alpha=DX0 - 1).add_(PB0 - 1),), v.zero.expand(env.shape[0]))
        return hits

    def _fire_sparse(self, v: "_Views", agent, tfc, sub_t):
        """The enemy fire of ``step`` for the ships that fire now only (same arithmetic)."""
        fire = torch.eq(v.fire_ships, tfc, out=v.fire).mul_(v.alive_ships).nonzero()  # [K, 2]: env, ship slot
        if not fire.shape[0]:
            return
        env, slot = fire[:, 0], fire[:, 1]
        base = torch.add(slot, env, alpha=ROWS * COLS).add_(SH0)
        ship = v.flat.index_select(0, (base + v.fire_rows).view(-1)).view(4, -1)
        d = agent.index_select(0, env).t() - ship[:2]  # [2, K] towards the agent
        d.mul_((d * d).sum(0, keepdim=True).clamp_(min=1e-12).rsqrt_().mul_(ENEMY_BULLET_SPEED))
        tf = tfc.view(-1).index_select(0, env)
        sub = torch.add(sub_t.view(-1).index_select(0, env), ship[3], alpha=-2)
        rows = torch.stack([ship[0], ship[1], d[0], d[1], v.one.expand(env.shape[0]), tf, sub,
                            d[1] * (-1.0 / ENEMY_BULLET_SPEED), d[0] * (-1.0 / ENEMY_BULLET_SPEED)], 1)  # X..SIN
        # into column 1 + 64·generation + slot
        column = torch.add(slot + EB0, ship[2].long(), alpha=EB_N // 2).add_(env * (ROWS * COLS))
        v.flat.index_put_((column[:, None] + v.bullet_offsets,), rows)

    # ------------------------------------------------------------------ rendering (§2.7)
    def camera(self, state):
        return HALF, HALF, 4.0

    def sprites(self, state) -> list[SpriteBatch]:
        main, expl, rocket = self._views(state["tab"]).batches
        if not self.sync_ok or self._rocket_live:  # drawn only once some level has reached the level end
            return [main, expl, rocket]
        return [main, expl]


class _Views:
    """Views of one state table and scratch buffers for ``Starpilot.step``: a step indexes
    dozens of row/column blocks, and on the CPU making a view costs as much as a small
    operation, so they are made once per table."""

    def __init__(self, game: Starpilot, tab: torch.Tensor):
        b, dev = tab.shape[0], tab.device
        self.tab = tab
        self.xy, self.vxy = tab[:, X:Y + 1], tab[:, VX:VY + 1]
        self.agent_xy, self.agent_v = tab[:, X:Y + 1, A], tab[:, VX:VY + 1, A]
        self.agent_x, self.agent_y = tab[:, X:X + 1, A], tab[:, Y:Y + 1, A]
        self.x_lethal, self.y_lethal, self.alive_lethal = tab[:, X, LETHAL], tab[:, Y, LETHAL], tab[:, ALIVE, LETHAL]
        self.x_rocket, self.alive_rocket, self.reach_rocket = tab[:, X, ROCKET], tab[:, ALIVE, ROCKET], tab[:, HP, ROCKET]
        self.alive_moving, self.x_moving, self.y_moving = tab[:, ALIVE, MOVING], tab[:, X, MOVING], tab[:, Y, MOVING]
        self.rank_sh, self.alive_sh, self.hp_sh = tab[:, RANK, SH], tab[:, ALIVE, SH], tab[:, HP, SH]
        self.v_sh = tab[:, VX:VY + 1, SH]
        self.x_pb, self.y_pb = tab[:, X, PB, None], tab[:, Y, PB, None]
        self.x_sh, self.y_sh = tab[:, X, None, SH], tab[:, Y, None, SH]
        self.alive_pb, self.xy_pb, self.born_pb = tab[:, ALIVE, PB], tab[:, X:Y + 1, PB], tab[:, BORN, PB]
        self.spark_rows, self.death_rows, self.death_src = tab[:, X:SUB + 1, SX], tab[:, X:SUB + 1, DX], tab[:, X:ALIVE + 1, SH]
        ships = slice(SH0, DUMMY)
        self.fire_ships, self.xy_ships, self.gen_ships = tab[:, FIRE, ships], tab[:, X:Y + 1, ships], tab[:, GEN, ships]
        self.alive_ships = tab[:, ALIVE, ships]
        self.to_sin, self.ring, self.alive_dummy = tab[:, X:SIN + 1], tab[:, :, SH], tab[:, ALIVE, DUMMY]
        self.launch_x, self.rocket_rows = tab[:, RANK, ROCKET, None], tab[:, X:ALIVE + 1, ROCKET]
        self.born_expl, self.alive_expl, self.tex_expl = tab[:, BORN, EXPL], tab[:, ALIVE, EXPL], tab[:, TEX, EXPL]
        self.sub, self.born, self.order = tab[:, SUB], tab[:, BORN], tab[:, ORDER]
        # scratch: float masks
        self.ok = torch.empty(b, DX0 - 1, device=dev)  # over MOVING: alive and not dying
        self.ok_sh, self.ok_pb = self.ok[:, SH0 - 1:DUMMY], self.ok[:, PB0 - 1:]
        self.dead = torch.empty(b, SH_N + 1, device=dev)
        self.fire = torch.empty(b, SH_N, device=dev)
        self.flat, self.ok_flat = tab.view(-1), self.ok.view(-1)
        self.row_offsets = torch.arange(ROWS, device=dev)[:, None] * COLS  # [ROWS, 1]: row r at r·COLS
        self.fire_rows = self.row_offsets[[X, Y, GEN, RANK]]
        self.spark_offsets, self.bullet_offsets = self.row_offsets[:SUB + 1, 0], self.row_offsets[:SIN + 1, 0]
        self.x_sh2, self.y_sh2 = tab[:, X, SH], tab[:, Y, SH]
        self.one, self.zero = torch.ones((), device=dev), torch.zeros((), device=dev)
        self.rank_ships = tab[:, RANK, ships]
        self.eb_new = torch.empty(b, SIN + 1, SH_N, device=dev)
        self.spark_new = torch.empty(b, SUB + 1, PB_N, device=dev)
        self.spark_new[:, ALIVE] = 1.0  # (overwritten by the explosion update anyway)
        self.pb_new = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, SUB_PLAYER_BULLET, QUARTER_COS, 0.0], device=dev).repeat(b, 1)
        self.k_rocket = torch.tensor([HALF, -ROCKET_SPEED, 0.0, 1.0], device=dev).expand(b, 4)
        # sprite batches over column ranges of the table
        # agent, ships, bullets: boxes ≤ 4 px (a rotated bullet spans ≤ 4.6 px): 5-px patch;
        # explosions: radius r0·1.4**frame, ≤ 0.96 units = 7.7 px across: 9-px patch
        def batch(cols, patch):  # drawn where ALIVE is nonzero
            return SpriteBatch(x=tab[:, X, cols], y=tab[:, Y, cols], rx=None, ry=None, texture=tab[:, TEX, cols],
                               order=tab[:, ORDER, cols], visible=tab[:, ALIVE, cols], patch=patch,
                               cos=tab[:, COS, cols], sin=tab[:, SIN, cols], extent_by_texture=game.extent_by_texture)
        self.batches = [batch(MAIN, 5), batch(EXPL, 9), batch(slice(ROCKET, COLS), game.patch_rocket)]
