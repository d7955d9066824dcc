"""Procgen's saved game state (gym3 ``get_state``/``set_state``), read and written in Python,
and our levels written into it: the same-state bridge between our engine and the real game.

A state is the byte string the C++ ``serialize`` methods write (``Game``, then
``BasicAbstractGame``, then the game's own fields), ending in the marker ``0xCAFECAFE``:
little-endian 32-bit ints and floats, strings as a length and bytes, the Mersenne Twister
generators as their text dump, the entity lists as a count and 31 four-byte fields per
entity. :class:`ProcgenState` splits a state into the part before the entity list, the
entities (a numpy structured array), and the rest (StarPilot: the spawn schedule, also an
entity list), and joins them back byte for byte.

:func:`write_level` puts environment ``i`` of our engine's freshly generated level into a
real game's freshly reset state, so that both engines then play the same level: StarPilot's
agent start and spawn schedule, FruitBot's agent start, barriers, presents, fruits and
treats in the real game's list order. Entity fields that our state does not hold (flags,
margins, sprite rotation, health) come from an entity of the same type in the real game's
own level, which the real game created with its constructors. Sprite themes are written as
0: the stock tasks draw with ``restrict_themes``, where every theme shows the theme-0
sprite and sizes follow the theme-0 file, and our stock configs have one sprite per type.
"""

from __future__ import annotations

import struct

import numpy as np
import torch

END_OF_BUFFER = 0xCAFECAFE

ENTITY = np.dtype([
    ("x", "<f4"), ("y", "<f4"), ("vx", "<f4"), ("vy", "<f4"), ("rx", "<f4"), ("ry", "<f4"),
    ("type", "<i4"), ("image_type", "<i4"), ("image_theme", "<i4"), ("render_z", "<i4"),
    ("will_erase", "<i4"), ("collides_with_entities", "<i4"),
    ("collision_margin", "<f4"), ("rotation", "<f4"), ("vrot", "<f4"),
    ("is_reflected", "<i4"), ("fire_time", "<i4"), ("spawn_time", "<i4"), ("life_time", "<i4"),
    ("expire_time", "<i4"), ("use_abs_coords", "<i4"),
    ("friction", "<f4"), ("smart_step", "<i4"), ("avoids_collisions", "<i4"), ("auto_erase", "<i4"),
    ("alpha", "<f4"), ("health", "<f4"), ("theta", "<f4"), ("grow_rate", "<f4"), ("alpha_decay", "<f4"),
    ("climber_spawn_x", "<f4"),
])
assert ENTITY.itemsize == 31 * 4

# Procgen's entity type ids (starpilot.cpp, fruitbot.cpp; the agent is 0 in every game)
PLAYER = 0
SP_FLYER = 4
FB_BARRIER, FB_GOOD, FB_BAD, FB_PRESENT = 1, 7, 4, 12


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def int(self) -> int:
        (v,) = struct.unpack_from("<i", self.data, self.at)
        self.at += 4
        return v

    def skip(self, n: int) -> None:
        self.at += n

    def string(self) -> None:
        self.skip(self.int())

    def rng(self) -> None:
        self.skip(4)  # is_seeded
        self.string()

    def entities(self) -> tuple[int, int]:
        """Skips an entity list; returns its start (the count) and end offsets."""
        start = self.at
        self.skip(self.int() * ENTITY.itemsize)
        return start, self.at


def generators(data: bytes) -> dict[str, tuple[np.ndarray, int]]:
    """The two ``Game`` generators of a state, ``level_seed_rand_gen`` (the level-seed
    stream) and ``rand_gen`` (the level's), as (624 state words, position): libstdc++'s
    text dump of a ``std::mt19937``, the words then the index of the next one to temper."""
    r = _Reader(data)
    r.skip(4)
    r.string()
    r.skip(4 * 17)
    out = {}
    for name in ["level_seed_rand_gen", "rand_gen"]:
        r.skip(4)  # is_seeded
        n = r.int()
        fields = [int(v) for v in data[r.at:r.at + n].split()]
        r.skip(n)
        out[name] = (np.array(fields[:-1], dtype=np.int64), fields[-1])
    return out


def _entities(data: bytes, start: int) -> np.ndarray:
    (count,) = struct.unpack_from("<i", data, start)
    return np.frombuffer(data, ENTITY, count, start + 4).copy()


def _entity_bytes(ents: np.ndarray) -> bytes:
    return struct.pack("<i", len(ents)) + np.ascontiguousarray(ents, ENTITY).tobytes()


class ProcgenState:
    """One environment's state: ``head`` bytes, ``entities``, ``middle`` bytes, then (StarPilot
    only) ``spawners``, and ``tail`` bytes; ``to_bytes()`` joins them back."""

    def __init__(self, data: bytes):
        r = _Reader(data)
        r.skip(4)  # serialize version
        name_at = r.at
        r.string()
        self.game = data[name_at + 4:r.at].decode()
        r.skip(4 * 17)  # options and level-seed range
        r.rng()  # level-seed generator
        r.rng()  # level generator
        r.skip(4 * 15)  # step data … is_waiting_for_step
        r.skip(4)  # grid_size
        start, end = r.entities()
        self.head, self.entities = data[:start], _entities(data, start)
        self.spawners = None
        if self.game == "starpilot":
            # the rest of BasicAbstractGame, with one generator and the grid, then the spawners
            r.skip(4 * 19)
            r.rng()
            r.skip(4 * 9)
            w, h = r.int(), r.int()
            assert r.int() == w * h
            r.skip(4 * w * h)
            s_start, s_end = r.entities()
            self.middle, self.spawners = data[end:s_start], _entities(data, s_start)
            self.tail = data[s_end:]
        else:
            self.middle, self.tail = data[end:], b""
        assert struct.unpack_from("<I", data, len(data) - 4)[0] == END_OF_BUFFER, "not a whole Procgen state"

    def to_bytes(self) -> bytes:
        parts = [self.head, _entity_bytes(self.entities), self.middle]
        if self.spawners is not None:
            parts += [_entity_bytes(self.spawners), self.tail]
        return b"".join(parts)

    def template(self, type_id: int, source: np.ndarray | None = None) -> np.ndarray:
        """A copy of the first entity of ``type_id`` (in ``source``, default the entities)."""
        ents = self.entities if source is None else source
        found = ents[ents["type"] == type_id]
        if not len(found):
            raise ValueError(f"the real game's level has no entity of type {type_id} to take fields from")
        return found[:1].copy()


def _rows(template: np.ndarray, n: int, **fields) -> np.ndarray:
    out = np.repeat(template, n)
    for k, v in fields.items():
        out[k] = v
    return out


def write_level(state: bytes, game, ours: dict[str, torch.Tensor], i: int) -> bytes:
    """``state`` (a real game's state at the start of a level) with environment ``i`` of our
    fresh level ``ours`` (``t == 0``) of ``game`` (our game object, ``VecGame.game``) in
    place of the real game's level."""
    from envs.games.fruitbot import Fruitbot
    from envs.games.starpilot import Starpilot

    s = ProcgenState(state)
    if int(ours["t"][i]) != 0:
        raise ValueError("only a fresh level (t == 0) can be written")
    if isinstance(game, Starpilot) and s.game == "starpilot":
        _write_starpilot(s, ours, i)
    elif isinstance(game, Fruitbot) and s.game == "fruitbot":
        _write_fruitbot(s, game, ours, i)
    else:
        raise ValueError(f"cannot write a {type(game).__name__} level into a {s.game} state")
    return s.to_bytes()


def _write_starpilot(s: ProcgenState, ours, i: int) -> None:
    from envs.games import starpilot as sp

    tab, sched, when = ours["tab"][i].cpu().numpy(), ours["sched"][i].cpu().numpy(), ours["sched_t"][i].cpu().numpy()
    if len(s.entities) != 1 or s.entities["type"][0] != PLAYER:
        raise ValueError("a StarPilot level starts with the agent alone")
    s.entities["x"], s.entities["y"] = tab[sp.X, sp.A], tab[sp.Y, sp.A]
    live = when < sp.NEVER
    spawn = when[live].astype(np.int32)
    ships = _rows(s.template(SP_FLYER, s.spawners), int(live.sum()),
                  x=sched[sp.X, live], y=sched[sp.Y, live], vx=sched[sp.VX, live], vy=sched[sp.VY, live],
                  spawn_time=spawn, fire_time=(sched[sp.FIRE, live] - spawn).astype(np.int32), image_theme=0)
    # the real game releases from the back of its list: ours reversed, so that ships spawning
    # in the same step enter in our order
    s.spawners = ships[::-1].copy()


def _write_fruitbot(s: ProcgenState, game, ours, i: int) -> None:
    from envs.games import fruitbot as fb

    x, y, rx, ry = ours["boxes"][i].cpu().numpy()  # barrier pieces, presents, fruit slots, treat slots
    nb = 2 * fb.NUM_ROWS
    agent = s.template(PLAYER)
    agent["x"] = ours["mob"][i, 0, 2].item()
    parts = [agent]
    fruits = nb + 10 + game.num_fruit
    # the real game's list order: agent, barriers (row by row, left then right), presents, fruits, treats
    for kind, lo, hi in [(FB_BARRIER, 0, nb), (FB_PRESENT, nb, nb + 10), (FB_GOOD, nb + 10, fruits),
                         (FB_BAD, fruits, fruits + game.num_treat)]:
        keep = np.arange(lo, hi)[y[lo:hi] > fb.PARK / 2]  # parked slots hold nothing
        parts.append(_rows(s.template(kind), len(keep), x=x[keep], y=y[keep], rx=rx[keep], ry=ry[keep], image_theme=0))
    s.entities = np.concatenate(parts)


def level_differences(state: bytes, game, ours: dict[str, torch.Tensor], i: int) -> list[str]:
    """The entity fields (``entities.x``, ``spawners.fire_time``, ...) in which the real game's
    fresh level ``state`` differs from environment ``i`` of our fresh level ``ours`` written
    into it (:func:`write_level`), image themes aside (written as 0); ``[]``: the same level."""
    real, written = ProcgenState(state), ProcgenState(write_level(state, game, ours, i))
    out = []
    for part in ["entities", "spawners"]:
        a, b = getattr(real, part), getattr(written, part)
        if a is None:
            continue
        if len(a) != len(b):
            out.append(f"{part} (count {len(a)} vs ours {len(b)})")
            continue
        out += [f"{part}.{f}" for f in ENTITY.names if f != "image_theme" and not np.array_equal(a[f], b[f])]
    return out


def frame_differences(ours: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame (``[N, 64, 64, 3]`` uint8 each): the pixels that are non-black in either
    frame, and those of them whose colour differs in any channel."""
    lit = (ours != 0).any(-1) | (real != 0).any(-1)
    return lit.sum((1, 2)), ((ours != real).any(-1) & lit).sum((1, 2))


def run_same_state(task: str, policy: str, num_envs: int, episodes: int, seed: int = 0) -> dict:
    """Our engine and the real Procgen on the same levels: every level our engine generates
    is written into the real game when it starts (at reset, and whenever an episode ends),
    both are stepped with the same actions of ``policy``, and every environment plays until
    ``episodes`` episodes have ended in total (episodes still running are not counted).

    Returns per-episode ``returns``/``lengths``/``completed`` of both engines (``[episodes]``
    arrays, in the order the episodes end, ties by environment), whether every step's
    rewards and dones agreed (``steps_agree``), and per compared frame the non-black and
    differing pixel counts (``lit``, ``differing``; the first frame of every level and every
    frame in between, both rendered from the same state)."""
    import envs
    from envs.policies import make_policy
    from envs.procgen_ref import ProcgenRef

    ours = envs.make(task, num_envs=num_envs, seed=seed)
    real = ProcgenRef(task, num_envs=num_envs, seed=seed)
    act = make_policy(policy, num_envs, seed=0)
    obs = ours.reset()
    real.reset()
    real.env.set_state([write_level(s, ours.game, ours.state, i) for i, s in enumerate(real.env.get_state())])
    lit, differing = [], []
    result = {k: [] for k in ["returns", "real_returns", "lengths", "real_lengths", "completed", "real_completed"]}
    steps_agree, step = True, 0
    while len(result["returns"]) < episodes:
        _, real_obs, _ = real.env.observe()
        a, b = frame_differences(obs, torch.from_numpy(real_obs["rgb"].copy()))
        lit.append(a)
        differing.append(b)
        action = act(step, obs)
        step += 1
        obs, reward, done, info = ours.step(torch.as_tensor(action))
        _, real_reward, real_done, real_info = real.step(torch.as_tensor(action))
        steps_agree &= bool(torch.equal(done, real_done)) and bool(torch.equal(reward, real_reward))
        ended = (done | real_done).nonzero().squeeze(1).tolist()
        for i in ended:
            for key, src in [("returns", info["episode_return"]), ("real_returns", real_info["episode_return"]),
                             ("lengths", info["episode_length"]), ("real_lengths", real_info["episode_length"]),
                             ("completed", info["prev_level_complete"]),
                             ("real_completed", real_info["prev_level_complete"])]:
                result[key].append(src[i].item())
        if ended:  # both have started a new level: ours goes into the real game
            states = real.env.get_state()
            for i in ended:
                states[i] = write_level(states[i], ours.game, ours.state, i)
            real.env.set_state(states)
    out = {k: np.array(v[:episodes]) for k, v in result.items()}
    out.update(steps_agree=steps_agree, lit=torch.cat(lit).numpy(), differing=torch.cat(differing).numpy())
    return out
