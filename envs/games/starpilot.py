"""StarPilot (Procgen, distribution mode "easy") as a batched torch program.

Rules: ``procgen-games-spec.md`` §2 (and §1 for the shared engine); the task config
(``envs.config.StarpilotConfig``) selects the variants of §5.1-5.3.

State (every tensor has a leading ``[N]`` environment dimension):

* ``t``       int64 ``[N]``: steps taken in this episode.
* ``tab``     float32 ``[N, ROWS, COLS]``: one column per entity slot, one row per field
  (planar, so that every field of every entity is a contiguous ``[N, COLS]`` plane).
  Columns:

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
    (one per step at most; a bullet and the hit spark that replaces it are gone ≤ 24
    steps after it was fired).

  Rows: position and velocity, ``ALIVE`` (0 no, 1 yes, 2 a ship killed this step: still
  drawn and still lethal during the next step, then removed), creation step ``BORN`` and
  ``SUB`` (the draw order is ``BORN·2**20 + SUB``, ``SUB`` following the original's
  creation order within a step: sparks, the enemy phase newest ship first, releases,
  bullet, rocket), rotation, texture; explosions (``EXT`` creation step, ``EXS`` its SUB);
  ship data (absolute fire step, spawn rank, ring generation, health).

  Explosions have no columns of their own: a death explosion sits at its ship's centre and
  moves with its velocity, and a hit spark replaces the player bullet that made it, so
  both reuse their host's kinematics (a column keeps moving after its host is removed).
* ``sched``   float32 ``[N, ROWS, 256]``: every ship of the level, sorted by spawn time, as
  the ``tab`` column it is released into; ``sched_t`` int64 ``[N, 256]`` the spawn steps;
  ``ptr`` int64 ``[N]`` how many have been released.
* ``rocket``  float32 ``[N, 4]``: the finish rocket's x, half-width, texture, and 1 once
  it has entered.

All randomness is drawn at ``generate`` from the level seed; ``step`` is deterministic.
Masks inside ``step`` are kept as float 0/1 planes: on CPU, float arithmetic on them is
several times cheaper than boolean comparisons and ``where``.
"""

from __future__ import annotations

import math

import torch

from envs import rng
from envs.config import StarpilotConfig
from envs.render import SpriteBatch, TextureSpec

W = 16.0  # world side
HALF = W / 2
MAXSPEED = 0.75
AGENT_R, SHIP_R, BULLET_R = 0.4, 0.5, 0.4
SHIP_SPEED = 0.75 * 0.4  # the original's speed factor × 0.4
ENEMY_BULLET_SPEED = 0.5
PLAYER_BULLET_SPEED = 0.8
ROCKET_SPEED = 0.2
ROCKET_TIME = 500
ENTRY_X = 16.5
SHIP_HEALTH = 2
MAX_GROUPS = 50  # group starts are ≥ 11, ≥ 10 apart and ≤ 500: at most 49 groups
MAX_GROUP_SIZE = 5
SCHEDULE = 256  # ≥ 50 × 5 ship entries
NEVER = 1 << 40  # spawn step of an empty schedule entry
EXPLOSION_FRAMES = 5
HALF_PI = math.pi / 2
FAR = 1.0e4  # where collision tests park slots that must not collide

# columns
A = 0
EB0, EB_N = 1, 128
SH0, SH_N = 129, 64
DUMMY = SH0 + SH_N
PB0, PB_N = DUMMY + 1, 26
COLS = PB0 + PB_N
EB = slice(EB0, EB0 + EB_N)
SH = slice(SH0, DUMMY + 1)  # ship ring plus the dummy (65 columns)
PB = slice(PB0, COLS)
EXPL = slice(SH0, COLS)  # columns that host explosions: ships, dummy, player bullets

# rows
X, Y, VX, VY, ALIVE, BORN, SUB, ROT, TEX, EXT, EXS, FIRE, RANK, GEN, HP = range(15)
ROWS = 15
NO_EXPLOSION = -100.0

# draw order within a step (SUB); the agent (layer 1) is above everything
SUB_ENEMY = 1 << 10  # + 2·(newest-first rank) + (0 bullet, 1 death explosion)
SUB_RELEASE = 1 << 19  # + rank among the ships spawning together
SUB_PLAYER_BULLET = (1 << 19) + (1 << 18)
SUB_ROCKET = SUB_PLAYER_BULLET + 1
AGENT_BORN = 1 << 17  # agent order = 2**37

# level generation: one rng stream, its draws sliced by use
S_LEVEL = 0
_G, _S = MAX_GROUPS, MAX_GROUPS * MAX_GROUP_SIZE
D_AGENT = slice(0, 2)
D_GAP, D_SIZE, D_THEME, D_Y = (slice(2 + k * _G, 2 + (k + 1) * _G) for k in range(4))
D_FIRE, D_ANGLE, D_STRAIGHT = (slice(2 + 4 * _G + k * _S, 2 + 4 * _G + (k + 1) * _S) for k in range(3))
D_ROCKET = 2 + 4 * _G + 3 * _S
DRAWS = D_ROCKET + 1

ROCKET_PIXELS = {"spaceRockets_001.png": (122, 374), "spaceRockets_002.png": (157, 309),
                 "spaceRockets_003.png": (118, 315), "spaceRockets_004.png": (136, 369)}


class Starpilot:
    """StarPilot, easy mode; ``config`` sets rewards, survival bonus, who may fire, group
    sizes and sprite sets."""

    def __init__(self, config: StarpilotConfig, device: torch.device):
        self.config = c = config
        self.device = device = torch.device(device)
        self.n_enemy, self.n_rocket = len(c.enemy_sprites), len(c.rocket_sprites)
        # textures: agent, player bullet, enemy bullet, ships…, rockets…, explosion frames
        self.textures = [TextureSpec("playerShip2_blue.png", 0), TextureSpec("towerDefense_tile295.png", 1),
                         TextureSpec("towerDefense_tile296.png", 2)]
        self.tex_ship = len(self.textures)
        self.textures += [TextureSpec(f, 4, i) for i, f in enumerate(c.enemy_sprites)]
        self.tex_rocket = len(self.textures)
        self.textures += [TextureSpec(f, 9, i) for i, f in enumerate(c.rocket_sprites)]
        self.tex_explosion = len(self.textures)
        self.textures += [TextureSpec(f"explosion{i + 1}.png", 54 + i) for i in range(EXPLOSION_FRAMES)]

        f32 = dict(device=device, dtype=torch.float32)
        # action → (0.5·maxspeed·ax, 0.5·maxspeed·ay, bullet direction: 0 none, ±1) (spec §1.2)
        table = [((a // 3 - 1) * 0.5 * MAXSPEED, (a % 3 - 1) * 0.5 * MAXSPEED, 0.0) if a <= 8 else
                 (0.0, 0.0, (-1.0 if a == 10 else 1.0) if c.player_can_fire else 0.0) for a in range(15)]
        self.action_table = torch.tensor(table, **f32)
        self.rocket_rx = torch.tensor([8.0 * ROCKET_PIXELS[f][0] / ROCKET_PIXELS[f][1] for f in c.rocket_sprites], **f32)
        # per column: lethal overlap distance (agent r + entity r; 0 = harmless), half-size
        self.lethal = torch.zeros(COLS, **f32)
        self.lethal[EB] = AGENT_R + BULLET_R
        self.lethal[SH0:DUMMY] = AGENT_R + SHIP_R
        self.radius = torch.full((COLS,), BULLET_R, **f32)
        self.radius[A] = AGENT_R
        self.radius[SH] = SHIP_R
        self.keep_limit = HALF + self.radius  # completely outside ⟺ |x − 8| > 8 + r or |y − 8| > 8 + r
        expl_r = torch.full((COLS - SH0,), 0.2, **f32)  # hit spark
        expl_r[: DUMMY - SH0] = 0.5 * SHIP_R  # death explosion: half the ship's half-width
        self.expl_r = expl_r[:, None] * (1.4 ** torch.arange(EXPLOSION_FRAMES, **f32))  # [97, 5]
        self.steps4 = torch.arange(1, 5, **f32)
        self.gen_rows = torch.arange(2, **f32)[:, None]
        self.pb_slots = torch.arange(PB_N, device=device)
        self.release_k = torch.arange(3, device=device)
        self.ship_slot = torch.arange(SH_N + 1, **f32)
        self.one = torch.ones((), **f32)
        # the 98% box test against the border (§1.4), in coordinates centred on the world
        self.block = HALF - float(torch.tensor(0.98 * AGENT_R, dtype=torch.float32))
        self.patch_rocket = 2 * int(max(4.0 * float(self.rocket_rx.max()), 4.0 * HALF) + 0.5) + 1
        self._consts: dict[int, dict[str, torch.Tensor]] = {}

    # ------------------------------------------------------------------ generation
    def generate(self, level_seed: torch.Tensor) -> dict[str, torch.Tensor]:
        c, dev = self.config, self.device
        key = level_seed.to(device=dev, dtype=torch.int64)
        n = key.shape[0]
        G, J = MAX_GROUPS, MAX_GROUP_SIZE
        # every draw of the level in one counter-based call (independent 32-bit words),
        # sliced into the uses below: agent start, per group, per ship, rocket theme
        bits = rng.hash_bits(key, S_LEVEL, DRAWS)
        uniform = lambda s: (bits[:, s] >> 8).float() * (1.0 / (1 << 24))  # noqa: E731  [0, 1), as rng.uniform
        randint = lambda s, lo, hi: lo + bits[:, s] % (hi - lo)  # noqa: E731  [lo, hi), as rng.randint
        # groups: the first starts at 1 + U{10..29}, each next one U{10..29} later, while ≤ 500 (§2.3)
        starts = 1 + torch.cumsum(randint(D_GAP, 10, 30), dim=1)  # [n, G]
        size = randint(D_SIZE, c.group_size[0], c.group_size[1] + 1)
        theme = randint(D_THEME, 0, self.n_enemy)
        y0 = 0.5 + 15.0 * uniform(D_Y)
        j = torch.arange(J, device=dev)
        spawn = (starts[:, :, None] + 5 * j).reshape(n, G * J)  # ships of a group enter 5 steps apart
        valid = ((starts <= ROCKET_TIME)[:, :, None] & (j < size[:, :, None])).reshape(n, G * J)
        delay = randint(D_FIRE, 10, 100)
        angle = (uniform(D_ANGLE) - 0.5) * HALF_PI
        angle = torch.where(randint(D_STRAIGHT, 0, 2) == 1, 0.0, angle)  # 50 %: straight
        vx, vy = -SHIP_SPEED * torch.cos(angle), SHIP_SPEED * torch.sin(angle)

        # sort by spawn step (stable: group order breaks ties), pad to SCHEDULE entries
        spawn, perm = torch.sort(torch.where(valid, spawn, NEVER), dim=1, stable=True)
        spawn = torch.cat([spawn, spawn.new_full((n, SCHEDULE - G * J), NEVER)], dim=1)
        perm = torch.cat([perm, perm.new_zeros(n, SCHEDULE - G * J)], dim=1)
        group = lambda v: v[:, :, None].expand(n, G, J).reshape(n, G * J).gather(1, perm)  # noqa: E731
        ship = lambda v: v.gather(1, perm)  # noqa: E731
        # rank among the ships spawning in the same step (≤ 3: group starts are ≥ 10 apart)
        zero = spawn.new_zeros(n, 2)
        rank = (torch.cat([zero[:, :1], spawn[:, 1:] == spawn[:, :-1]], 1).long()
                + torch.cat([zero, spawn[:, 2:] == spawn[:, :-2]], 1).long())
        index = torch.arange(SCHEDULE, device=dev).expand(n, SCHEDULE)
        live = spawn < NEVER
        spawn_f = torch.where(live, spawn, 0).float()
        fire = spawn_f + ship(delay) if c.enemies_fire else torch.full_like(spawn_f, -1.0)
        rows = [None] * ROWS
        rows[X], rows[Y], rows[VX], rows[VY] = torch.full_like(spawn_f, ENTRY_X), group(y0), ship(vx), ship(vy)
        rows[ALIVE], rows[BORN], rows[SUB] = torch.ones_like(spawn_f), spawn_f, SUB_RELEASE + rank.float()
        rows[ROT], rows[TEX] = torch.full_like(spawn_f, HALF_PI), (self.tex_ship + group(theme)).float()
        rows[EXT], rows[EXS] = torch.full_like(spawn_f, NO_EXPLOSION), torch.zeros_like(spawn_f)
        rows[FIRE], rows[RANK], rows[GEN] = fire, 4 * spawn_f + rank, ((index >> 6) & 1).float()
        rows[HP] = torch.full_like(spawn_f, SHIP_HEALTH)
        sched = torch.stack(rows, dim=1)

        tab = torch.zeros(n, ROWS, COLS, device=dev)
        tab[:, X:Y + 1, A] = AGENT_R + (W - 2 * AGENT_R) * uniform(D_AGENT)
        tab[:, ALIVE, A] = 1.0
        tab[:, BORN, A] = AGENT_BORN
        tab[:, ROT, A] = HALF_PI
        tab[:, TEX, EB], tab[:, TEX, PB] = 2.0, 1.0
        tab[:, EXT] = NO_EXPLOSION
        theme_r = randint(D_ROCKET, 0, self.n_rocket)
        rocket = torch.stack([torch.zeros(n, device=dev), self.rocket_rx[theme_r],
                              (self.tex_rocket + theme_r).float(), torch.zeros(n, device=dev)], dim=1)
        return {"t": torch.zeros(n, dtype=torch.int64, device=dev), "tab": tab, "sched": sched,
                "sched_t": spawn, "ptr": torch.zeros(n, dtype=torch.int64, device=dev), "rocket": rocket}

    # ------------------------------------------------------------------ one step (§2.5)
    def step(self, state: dict[str, torch.Tensor], action: torch.Tensor):
        c = self.config
        t = state["t"] + 1
        b = t.shape[0]
        tf = t.float()[:, None]
        tab0 = state["tab"]
        act = self.action_table.index_select(0, action)
        direction = act[:, 2]

        # agent velocity (§1.3), then four border-clamped sub-steps (§1.4): the sub-steps that
        # are not blocked form a prefix; a blocked one snaps the agent to the wall
        vel = (0.5 * tab0[:, VX:VY + 1, A] + act[:, :2]) * 0.9
        sub = torch.addcmul((tab0[:, X:Y + 1, A] - HALF)[..., None], (0.25 * vel)[..., None], self.steps4)
        free = (sub.abs() < self.block).float()  # [b, 2, 4]
        last = sub[..., 3]
        centred = torch.where(free[..., 3] > 0, last, last.clamp(AGENT_R - HALF, HALF - AGENT_R))
        agent = centred + HALF
        vel = vel * (0.25 * free.sum(2))

        # every other entity moves in a straight line (a column keeps moving after removal:
        # explosions ride on it)
        tab = tab0.clone()
        tab[:, X:Y + 1] += tab0[:, VX:VY + 1]
        tab[:, X:Y + 1, A] = agent
        tab[:, VX:VY + 1, A] = vel
        x, y = tab[:, X], tab[:, Y]
        ax, ay = agent[:, :1], agent[:, 1:]
        rocket0 = state["rocket"]
        rocket_x = rocket0[:, 0] - ROCKET_SPEED * rocket0[:, 3]

        # collision pass (§1.7). The agent dies on touching a ship (a dying one too) or an
        # enemy bullet; touching the rocket (y span 0..16: only x matters) completes the level
        alive0 = tab0[:, ALIVE]
        reach = self.lethal - torch.maximum((x - ax).abs(), (y - ay).abs())
        died = (reach * alive0).amax(1) > 0
        complete = (rocket0[:, 3] > 0) & ((agent[:, 0] - rocket_x).abs() < AGENT_R + rocket0[:, 1])

        # each player bullet hits the newest overlapping ship that is not dying; key: the
        # ship's newness (exact small integers in float32) · 128 + its slot + 1
        ship_ok = alive0[:, SH] * (2.0 - alive0[:, SH])  # 1: alive and not dying
        park = FAR * (1.0 - ship_ok)
        sx, sy = x[:, SH] + park, y[:, SH] + park
        park = FAR * (1.0 - alive0[:, PB])
        bx, by = x[:, PB] - park, y[:, PB] - park
        gap = torch.maximum((bx[:, :, None] - sx[:, None, :]).abs_(), (by[:, :, None] - sy[:, None, :]).abs_())
        newness = (1023.0 - 4.0 * tf + tab0[:, RANK, SH]).clamp_(min=0.0)  # 1023 − (4·age + 3 − rank)
        key = 128.0 * newness + self.ship_slot + 1.0
        best = gap.neg_().add_(BULLET_R + SHIP_R).sign_().mul_(key[:, None, :]).amax(2)  # [b, 26]; > 0: hit
        hit = best.clamp(0.0, 1.0)
        target = (torch.remainder(best - 1.0, 128.0) * hit + (DUMMY - SH0) * (1.0 - hit)).long()
        hits = torch.zeros(b, SH_N + 1, device=t.device).scatter_add_(1, target, hit)
        # the spent bullet becomes a hit spark at its centre, moving with the ship it hit
        hit3 = hit[:, None, :]
        tab[:, VX:VY + 1, PB] = torch.lerp(tab[:, VX:VY + 1, PB],
                                           tab[:, VX:VY + 1, SH].gather(2, target[:, None, :].expand(b, 2, PB_N)), hit3)
        spark = torch.stack([tf.expand(b, PB_N), 1.0 + tf - tab0[:, BORN, PB]], dim=1)
        tab[:, EXT:EXS + 1, PB] = torch.lerp(tab[:, EXT:EXS + 1, PB], spark, hit3)

        # removal (§1.7): marked (dying ships, spent bullets) or completely outside the world
        outside = torch.maximum((x - HALF).abs(), (y - HALF).abs())
        keep = torch.heaviside(self.keep_limit - outside, self.one)
        tab[:, ALIVE] = alive0 * (2.0 - alive0) * keep
        alive = tab[:, ALIVE]
        alive[:, PB] *= 1.0 - hit

        # enemy phase, newest ship first: fire once, fire_delay steps after spawning; then die
        ship_alive = alive[:, SH]
        enemy_sub = SUB_ENEMY + 2.0 * (4.0 * tf + 3.0 - tab0[:, RANK, SH])
        if c.enemies_fire:
            fire = (ship_alive * (tab0[:, FIRE, SH] == tf))[:, :SH_N]
            sx, sy = x[:, SH0:DUMMY], y[:, SH0:DUMMY]
            dx, dy = ax - sx, ay - sy
            scale = ENEMY_BULLET_SPEED * torch.rsqrt((dx * dx + dy * dy).clamp_(min=1e-12))
            dx, dy = dx * scale, dy * scale
            new = torch.stack([sx, sy, dx, dy, torch.ones_like(sx), tf.expand(b, SH_N), enemy_sub[:, :SH_N],
                               -torch.atan2(dy, dx) - HALF_PI], dim=1).repeat(1, 1, 2)  # [b, 8, 128]
            to = (fire[:, None, :] * (tab0[:, GEN, SH0:DUMMY][:, None, :] == self.gen_rows)).reshape(b, 1, EB_N)
            tab[:, X:ROT + 1, EB] = torch.lerp(tab[:, X:ROT + 1, EB], new, to)
        hp = tab0[:, HP, SH] - hits
        tab[:, HP, SH] = hp
        dead = ship_alive * torch.heaviside(-hp, self.one)
        kills = dead.sum(1)
        alive[:, SH] += dead  # 1 → 2: dying
        death = torch.stack([tf.expand(b, SH_N + 1), enemy_sub + 1.0], dim=1)
        tab[:, EXT:EXS + 1, SH] = torch.lerp(tab[:, EXT:EXS + 1, SH], death, dead[:, None, :])

        # release the ships scheduled for this step (≤ 3) into their ring columns
        ptr = state["ptr"]
        cand = (ptr[:, None] + self.release_k).clamp_(max=SCHEDULE - 1)
        release = state["sched_t"].gather(1, cand) == t[:, None]
        slot = torch.where(release, cand & (SH_N - 1), DUMMY - SH0)[:, None, :].expand(b, ROWS, 3)
        tab[:, :, SH].scatter_(2, slot, state["sched"].gather(2, cand[:, None, :].expand(b, ROWS, 3)))
        tab[:, ALIVE, DUMMY] = 0.0

        # the player's bullet: one per step on a special action, from the agent's side
        if c.player_can_fire:
            shot = direction.abs()[:, None] * (self.pb_slots == (t % PB_N)[:, None])
            new = torch.stack([ax[:, 0] + BULLET_R * direction, ay[:, 0], PLAYER_BULLET_SPEED * direction,
                               torch.zeros_like(direction), torch.ones_like(direction), tf[:, 0],
                               torch.full_like(direction, SUB_PLAYER_BULLET), -HALF_PI * direction,
                               torch.ones_like(direction), torch.full_like(direction, NO_EXPLOSION)], dim=1)
            tab[:, X:EXT + 1, PB] = torch.lerp(tab[:, X:EXT + 1, PB], new[..., None], shot[:, None, :])

        # the finish rocket enters at step 500 with its left edge on the right border
        launch = (t == ROCKET_TIME).float()
        rocket = rocket0.clone()
        rocket[:, 0] = torch.lerp(rocket_x, W + rocket0[:, 1], launch)
        rocket[:, 3] += launch

        reward = c.kill_reward * kills
        if c.finish_reward:
            reward = reward + c.finish_reward * complete.float()
        if c.survival_bonus:
            reward = reward + c.survival_bonus * (~died).float()
        new_state = dict(state)
        new_state.update(t=t, tab=tab, ptr=ptr + release.sum(1), rocket=rocket)
        return new_state, reward, died | complete, complete

    # ------------------------------------------------------------------ rendering (§2.7)
    def camera(self, state):
        centre = torch.full((state["t"].shape[0],), HALF, device=state["t"].device)
        return centre, centre, 4.0

    def _const(self, n: int) -> dict[str, torch.Tensor]:
        if n not in self._consts:
            dev = self.device
            self._consts[n] = {"radius": self.radius.expand(n, COLS).contiguous(),
                               "half": torch.full((n, 1), HALF, device=dev),
                               "order": torch.full((n, 1), (ROCKET_TIME << 20) + SUB_ROCKET, dtype=torch.int64, device=dev)}
        return self._consts[n]

    def sprites(self, state) -> list[SpriteBatch]:
        n = state["t"].shape[0]
        k = self._const(n)
        tab = state["tab"]
        # agent, ships, bullets: boxes ≤ 4 px (a rotated bullet spans ≤ 4.6 px): 5-px patch
        main = SpriteBatch(x=tab[:, X], y=tab[:, Y], rx=k["radius"], ry=k["radius"], texture=tab[:, TEX].long(),
                           order=(tab[:, BORN].long() << 20) + tab[:, SUB].long(), visible=tab[:, ALIVE] > 0,
                           patch=5, rotation=tab[:, ROT])
        # explosions: radius r0·1.4**age over 5 frames, ≤ 0.96 units = 7.7 px across: 9-px patch
        age = (state["t"][:, None] - tab[:, EXT, EXPL].long())
        frame = age.clamp(0, EXPLOSION_FRAMES - 1)
        r = self.expl_r.expand(n, -1, -1).gather(2, frame[..., None])[..., 0]
        expl = SpriteBatch(x=tab[:, X, EXPL], y=tab[:, Y, EXPL], rx=r, ry=r, texture=self.tex_explosion + frame,
                           order=(tab[:, EXT, EXPL].long() << 20) + tab[:, EXS, EXPL].long(),
                           visible=age < EXPLOSION_FRAMES, patch=9)
        batches = [main, expl]
        rocket = state["rocket"]
        if bool((rocket[:, 3] > 0).any()):  # drawn only once some level has reached step 500
            batches.append(SpriteBatch(x=rocket[:, :1], y=k["half"], rx=rocket[:, 1:2], ry=k["half"],
                                       texture=rocket[:, 2:3].long(), order=k["order"],
                                       visible=rocket[:, 3:] > 0, patch=self.patch_rocket))
        return batches
