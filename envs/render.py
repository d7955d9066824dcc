"""Batched sprite renderer: 64×64×3 uint8 frames for every environment in one pass.

Each visible entity is drawn as a small square patch of pixels around its box. For every
patch pixel we inverse-map the pixel centre into the (possibly rotated, possibly tiled)
sprite and sample the nearest texel of the sprite's full-resolution PNG, once, as Qt's
non-smooth painter does: with the position p in texels, texel ``ceil(p) - 1`` (Qt's
fixed-point blits round so), so a pixel is drawn when its centre lies in (left, right] and
(top, bottom] of the box. The painter's algorithm is replaced by a max-reduction: each
drawn pixel carries the key ``(draw_order + 1) << 32 | alpha << 24 | rgb`` and
``scatter_reduce(amax)`` keeps the topmost one. That is order-independent and
deterministic on every device, and needs no loop over entities.

Colours are premultiplied by alpha with Qt's rounding, and every texel with nonzero alpha
is drawn: the topmost texel's premultiplied colour is exactly Qt's source-over blend onto
the black background. Where a partially transparent texel (a sprite's soft edge) lies over
another sprite, the sprite below does not show through it (one layer is kept per pixel).
With the stock tasks that and Qt's fixed-point rounding leave well under 1% of the lit
pixels different from the real game on the same state (measured by ``envs.procgen_state.run_same_state``).

How the work is laid out (the cost at 64 environments is the number of tensor operations,
not their size, so everything is arranged to need few of them):

* every batch becomes a list of *instances* (one per drawn slot, or several per slot when
  a batch's patch is larger than the smallest one: a big patch is cut into tiles of the
  small size), and all instances of all batches go through one per-pixel pass;
* the texture atlas is padded with a transparent border and stores, per texel, either the
  colour or a large negative key, so "outside the box" and "transparent texel" both come
  out of one lookup, and off-canvas pixels go to a trash row/column of the canvas;
* without free rotation the sprite coordinate u depends on the pixel column only and v on
  the row only (quarter turns use a transposed copy of the atlas), so both are computed
  per patch row/column and only the texel lookup and the key are done per pixel.

On the CPU only the visible slots are drawn (a ``nonzero`` compaction, which costs nothing
there). On other devices every slot is drawn, invisible ones into a trash frame, so that
rendering never waits for the device (no data-dependent shapes).

On the CPU the same computation runs by default as one C loop (``envs/native/render.c``,
built on first use: see ``envs.native``), which draws each environment into a key buffer that
stays in cache and returns contiguous frames. It gives the torch path's frames bit for bit
(``tests/test_render.py``) at a fraction of the cost: at 64 environments the torch path's
hundred-odd tensor operations per frame were about 40% of a Starpilot step and 60% of a
Fruitbot step. ``Renderer(native=False)`` (or ``CRL_MERGE_NATIVE=0``) keeps the torch path.

Sprites are the CC0 PNG files shipped in the installed ``procgen-mirror`` package. When
those files are absent, every sprite becomes a flat rectangle in Procgen's monochrome
colour for its type and theme (spec §1.10.7).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

FRAME = 64  # observation side, pixels
CANVAS = FRAME + 1  # canvas side: row/column FRAME is the trash for off-canvas pixels
ORDER_SHIFT = 32  # a key is (order + 1) << 32 | alpha << 24 | premultiplied rgb
NO_KEY = -(1 << 62) - (1 << ORDER_SHIFT)  # transparent texel: negative whatever order (< 2**30) is added
ORDER_LIMIT = 1 << 30

KNOWN_SPRITES = frozenset(
    [f"spaceShips_00{i}.png" for i in range(1, 10)]
    + [f"spaceRockets_00{i}.png" for i in range(1, 5)]
    + [f"fruit{i}.png" for i in range(1, 7)]
    + [f"food{i}.png" for i in range(1, 7)]
    + [f"present{i}.png" for i in range(1, 4)]
    + [f"explosion{i}.png" for i in range(1, 6)]
    + ["playerShip2_blue.png", "towerDefense_tile295.png", "towerDefense_tile296.png",
       "robot_3Dblue.png", "tileStone_slope.png", "keyRed2.png"]
)


@dataclass(frozen=True)
class TextureSpec:
    """One sprite a game draws: its file and the (type id, theme) that give its monochrome colour."""

    file: str
    mono_type: int
    mono_theme: int = 0


@dataclass
class SpriteBatch:
    """Fixed-capacity slots of one kind of entity, all tensors of shape ``[num_envs, slots]``.

    ``x, y, rx, ry`` are the world-space centre and half-extents; ``texture`` (int64) indexes
    the game's texture list; ``order`` (int64, 0 ≤ order < 2**30) is the draw order, larger on
    top; ``patch`` is the side, in pixels, of a square that surely covers the drawn box
    (rotated included). Rotation is clockwise on screen: ``quarter_turns`` (0-3, the whole
    batch) plus ``flip`` (a further half turn, per slot) cover most sprites; a free rotation
    per slot is given either as ``rotation`` (radians) or, cheaper, as its ``cos`` and ``sin``.
    ``tiles_u``/``tiles_v`` repeat the sprite that many times across the box. ``texture``
    and ``order`` may also be float tensors holding exact integers (order < 2**24); with
    ``rx = ry = None`` the half-extents come from ``extent_by_texture`` (``[2, textures]``).
    ``visible`` may be boolean or numeric (nonzero: drawn); a game may pass a row of its state.
    """

    x: torch.Tensor
    y: torch.Tensor
    rx: torch.Tensor | None
    ry: torch.Tensor | None
    texture: torch.Tensor
    order: torch.Tensor
    visible: torch.Tensor
    patch: int
    quarter_turns: int = 0
    flip: torch.Tensor | None = None
    rotation: torch.Tensor | None = None
    tiles_u: torch.Tensor | None = None
    tiles_v: torch.Tensor | None = None
    cos: torch.Tensor | None = None
    sin: torch.Tensor | None = None
    extent_by_texture: torch.Tensor | None = None

    @property
    def free_rotation(self) -> bool:
        return self.rotation is not None or self.cos is not None


def monochrome_colour(type_id: int, theme: int) -> tuple[int, int, int]:
    """Procgen's flat colour for an image type and theme (spec §1.10.7, Appendix A)."""
    n = ((29 * (type_id + 1)) % 64 + 19 * theme) % 64
    d2, d1, d0 = n // 16, (n // 4) % 4, n % 4
    return (64 * (d2 + 1) - 1, 64 * (d1 + 1) - 1, 64 * (d0 + 1) - 1)


def procgen_asset_dir() -> Path | None:
    """The ``misc_assets`` folder of the installed procgen-mirror package, if there is one."""
    spec = importlib.util.find_spec("procgen")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "data" / "assets" / "misc_assets"
    return folder if folder.is_dir() else None


def qt_byte_mul(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Qt's 8-bit product c·a/255 (``BYTE_MUL``, ``qPremultiply``): (t + t/256 + 128)/256, t = c·a."""
    t = c * a
    return (t + (t >> 8) + 0x80) >> 8


@functools.lru_cache(maxsize=None)
def _load_sprite(path: str) -> np.ndarray:
    """The sprite's RGBA texels at full resolution ``[H, W, 4]``, colour premultiplied by
    alpha as Qt converts an image to ``ARGB32_Premultiplied``."""
    from PIL import Image

    rgba = np.asarray(Image.open(path).convert("RGBA")).astype(np.int64)
    rgba[..., :3] = qt_byte_mul(rgba[..., :3], rgba[..., 3:])
    return rgba


# Rows of the per-instance float table: centre, half-extents, then (cos, sin) of the
# rotation in the general pass or the signs of the column/row axes in the separable pass,
# then the patch origin relative to the centre pixel (half the patch, less the tile's
# offset), texture, draw order (when given as floats), environment, and tiling.
_X, _EX, _AB, _H, _TEXR, _ORD, _ENV, _TILE = 0, 2, 4, 6, 8, 9, 10, 11


class Renderer:
    """Draws a game's sprite batches into ``[num_envs, 64, 64, 3]`` uint8 frames.

    ``compact`` (default: on the CPU only) draws just the visible slots; without it every
    slot is drawn and the step needs no device synchronisation. ``native`` (default: where
    compact on the CPU and the kernel builds) draws with the C kernel; ``True`` requires it.
    """

    def __init__(self, textures: list[TextureSpec], device: torch.device | str, monochrome: bool = False,
                 compact: bool | None = None, native: bool | None = None):
        folder = None if monochrome else procgen_asset_dir()
        if folder is None and not monochrome:
            warnings.warn("procgen-mirror's sprite files were not found; drawing monochrome rectangles instead",
                          stacklevel=2)
        self.monochrome = folder is None
        images = []
        for spec in textures:
            if self.monochrome:  # one opaque texel: the flat colour fills the box
                images.append(np.array([[[*monochrome_colour(spec.mono_type, spec.mono_theme), 255]]], dtype=np.int64))
            else:
                images.append(_load_sprite(str(folder / spec.file)))
        # Texture i at [i], its transpose (for odd quarter turns) at [T + i], each at full
        # resolution with a transparent border, one after the other in one flat key table.
        # Per texture: width, height, row stride and the flat index of texel (0, 0).
        images += [img.transpose(1, 0, 2) for img in images]
        chunks, info, at = [], [], 0
        for img in images:
            h, w = img.shape[:2]
            # Little-endian byte order r, g, b, alpha: the canvas's low three bytes are the frame itself.
            packed = img[..., 0] | (img[..., 1] << 8) | (img[..., 2] << 16) | (img[..., 3] << 24)
            padded = np.full((h + 2, w + 2), NO_KEY, dtype=np.int64)
            padded[1:-1, 1:-1] = np.where(img[..., 3] > 0, packed, NO_KEY)
            chunks.append(padded.reshape(-1))
            info.append((w, h, w + 2, at + w + 3))
            at += padded.size
        assert at < 1 << 24, "texel indices are computed exactly in float32"
        self.num_textures = len(textures)
        self.device = torch.device(device)
        self.compact = self.device.type == "cpu" if compact is None else compact
        self.texel_key = torch.as_tensor(np.concatenate(chunks), device=self.device)
        self.texture_info = torch.tensor(info, dtype=torch.float32, device=self.device).T.contiguous()  # [4, 2T]
        # per quarter turn (0-3): (cos, sin) for the general pass, axis signs for the separable one
        self.turn_cs = torch.tensor([[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, -1.0]], device=self.device)
        self.turn_sigma = torch.tensor([[1.0, -1.0, -1.0, 1.0], [1.0, 1.0, -1.0, -1.0]], device=self.device)
        self._cache: dict = {}
        self._plans: dict = {}
        self.native = self._native_kernel(native)
        if self.native is not None:  # the kernel's atlas: alpha << 24 | rgb as 32 bits, 0 for transparent
            self.texel_rgba = self.texel_key.clamp(min=0).to(torch.int32)
        self._native_frames: dict = {}

    def _native_kernel(self, wanted: bool | None):
        """The C kernel's entry point, or None for the torch path (see ``native`` above)."""
        if wanted is False or (wanted is None and not (self.compact and self.device.type == "cpu")):
            return None
        if self.device.type != "cpu" or not self.compact:
            raise ValueError(f"the native renderer draws compact frames on the CPU only, not on {self.device} "
                             f"with compact={self.compact}")
        from envs import native

        library = native.load("render")
        if library is None:
            if wanted:
                raise RuntimeError("native=True, but the render kernel is not available "
                                   + ("(CRL_MERGE_NATIVE=0)" if not native.enabled() else "(see the warning above)"))
            return None
        kernel = library.render_frames
        kernel.restype = ctypes.c_int64
        pointer, integer, real = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
        kernel.argtypes = [pointer, integer, pointer, integer, pointer, integer, real, real, integer, integer,
                           pointer, pointer, integer, ctypes.POINTER(_NativeBatch), integer]
        return kernel

    # ------------------------------------------------------------------ constants
    def _const(self, key, make):
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = make()
        return value

    def _scalar(self, v: float) -> torch.Tensor:
        return self._const(("scalar", v), lambda: torch.tensor(v, dtype=torch.float32, device=self.device))

    # ------------------------------------------------------------------ rendering
    def render(self, cx, cy, scale: float, batches: list[SpriteBatch]) -> torch.Tensor:
        """Frames for camera centres ``(cx, cy)`` (world units: ``[num_envs]`` tensors, or
        floats shared by all environments) at ``scale`` px per unit: ``[num_envs, 64, 64, 3]``
        uint8, contiguous from the C kernel, a strided view into the key canvas from torch."""
        assert sys.byteorder == "little", "the canvas is decoded as little-endian bytes"
        num_envs = batches[0].visible.shape[0] if batches else cx.shape[0]
        if self.native is not None:
            return self._render_native(cx, cy, scale, batches, num_envs)
        with torch.inference_mode(False):  # the frames are handed out: a normal tensor even in inference mode
            canvas = torch.zeros((num_envs + 1) * CANVAS * CANVAS, dtype=torch.int64, device=self.device)
        if batches:
            general = any(sb.free_rotation for sb in batches)
            tiled = any(sb.tiles_u is not None or sb.tiles_v is not None for sb in batches)
            q = min(sb.patch for sb in batches)
            plans = [self._plan(sb, num_envs, general, tiled, q) for sb in batches]
            # extents by texture, and int64 draw orders, go along separately; all else in one table
            table = plans[0].deferred_extent
            deferred = table is not None and all(p.deferred_extent is table for p in plans)
            float_order = all(p.float_order for p in plans)
            parts = [self._instances(p, num_envs, deferred, float_order) for p in plans]
            f, order = (parts[0][0], parts[0][1]) if len(parts) == 1 else \
                (torch.cat([p[0] for p in parts], 1), None if float_order else torch.cat([p[1] for p in parts]))
            if deferred:  # box sides in pixels, looked up from a table scaled once
                scaled = self._const(("extent", id(table), scale), lambda: (table, table * (2.0 * scale)))[1]
                extent = scaled.index_select(1, f[_TEXR].long())
            else:
                extent = f[_EX:_EX + 2] * (2.0 * scale)
            key, pixel = self._pixels(f, extent, order, cx, cy, scale, general, tiled, q)
            canvas.scatter_reduce_(0, pixel.view(-1), key.view(-1), reduce="amax")
        # A strided view (no copy): callers that need contiguous memory call .contiguous().
        with torch.inference_mode(False):
            frames = canvas.view(torch.uint8).view(num_envs + 1, CANVAS, CANVAS, 8)
            return frames[:num_envs, :FRAME, :FRAME, :3]

    def _render_native(self, cx, cy, scale: float, batches: list[SpriteBatch], n: int) -> torch.Tensor:
        """``render`` by the C kernel: contiguous frames."""
        with torch.inference_mode(False):
            frames = torch.zeros((n, FRAME, FRAME, 3), dtype=torch.uint8)
        (x, x_stride), (y, y_stride) = self._camera_axis(cx, n), self._camera_axis(cy, n)
        table = self._native_table(batches, n)
        status = self.native(frames.data_ptr(), n, x.data_ptr(), x_stride, y.data_ptr(), y_stride, scale, 2.0 * scale,
                             table.general, table.tiled, self.texel_rgba.data_ptr(), self.texture_info.data_ptr(),
                             self.num_textures, table.structs, len(batches))
        if status:
            what = f"a visible slot's texture is outside 0..{self.num_textures - 1}" if status < 0 else \
                "a visible slot's quarter turns are outside 0..3"
            raise ValueError(f"sprite batch {abs(status) - 1}: {what}")
        return frames

    def _camera_axis(self, c, n: int) -> tuple[torch.Tensor, int]:
        """One camera coordinate for the kernel: float32 values and their stride (0: shared)."""
        if not isinstance(c, torch.Tensor):
            return self._const(("native cam", float(c)), lambda: torch.tensor([c], dtype=torch.float32)), 0
        c = c.to(torch.float32).reshape(-1)
        if c.shape[0] not in (1, n):
            raise ValueError(f"a camera coordinate per environment needs {n} values, got {c.shape[0]}")
        return c, 0 if c.shape[0] == 1 else c.stride(0)

    def _native_table(self, batches: list[SpriteBatch], n: int) -> "_NativeTable":
        """The kernel's description of ``batches``, kept while the game passes the same batch
        objects (the tensors it points into are then the same)."""
        key = (tuple(id(sb) for sb in batches), n)
        table = self._native_frames.get(key)
        if table is None or any(a is not b for a, b in zip(table.batches, batches)) or table.volatile:
            if len(self._native_frames) > 64:
                self._native_frames.clear()
            table = self._native_frames[key] = _NativeTable(batches, n)
        return table

    def _plan(self, sb: SpriteBatch, n: int, general: bool, tiled: bool, q: int) -> "_Plan":
        """How to gather ``sb``'s instances; kept while the game passes the same batch object
        (games that update their state in place do), so that a frame only does the gathers."""
        key = (id(sb), n, general, tiled, q)
        cached = self._plans.get(key)
        if cached is not None and cached.batch is sb and not cached.volatile:
            return cached
        if len(self._plans) > 64:
            self._plans.clear()
        plan = self._plans[key] = _Plan(self, sb, n, general, tiled, q)
        return plan

    def _instances(self, plan: "_Plan", n: int, deferred: bool, float_order: bool):
        """The batch's instance table ``[11 or 13, V]`` (see ``_X``…) and, unless the draw
        orders are floats (then a row of the table), its int64 draw orders ``[V]``."""
        if self.compact:
            drawn = plan.batch.visible.nonzero()  # [V, 2]: environment, slot
            env = drawn[:, 0]
            values = plan.gather(env, drawn[:, 1])
            v = drawn.shape[0]
        else:
            visible = plan.batch.visible.reshape(-1)
            visible = visible if visible.dtype == torch.bool else visible != 0
            env = torch.where(visible, plan.env_ids, n)  # invisible slots draw into the trash frame
            values, v = [t.reshape(-1) for t in plan.fulls], n * plan.slots
        rows = [values[i] if isinstance(i, int) else self._scalar(i[1]).expand(v) for i in plan.rows]
        tex = values[plan.tex]
        if plan.turns is not None:  # quarter turns per slot
            turns = values[plan.turns]
            turns = turns if turns.dtype == torch.int64 else turns.long()
            odd = (turns & 1).bool()
            if plan.general:
                cs = self.turn_cs.index_select(1, turns)
                rows[_AB], rows[_AB + 1] = cs[0], cs[1]
            else:
                sigma = self.turn_sigma.index_select(1, turns)
                rows[_AB], rows[_AB + 1] = sigma[0], sigma[1]
        if plan.by_texture and not deferred:
            extent = plan.extent_by_texture.index_select(1, tex if tex.dtype == torch.int64 else tex.long())
            rows[_EX], rows[_EX + 1] = (extent[1], extent[0]) if plan.transposed else (extent[0], extent[1])
        if plan.turns is not None and not plan.general:  # odd turns: transposed atlas, extents and tiles swapped
            swapped = [_EX, _TEXR] if plan.tiled else [_EX]  # the tiles' rows, until tex, order and env go in
            for i in swapped:
                rows[i], rows[i + 1] = torch.where(odd, rows[i + 1], rows[i]), torch.where(odd, rows[i], rows[i + 1])
            tex = torch.where(odd, tex + self.num_textures, tex)
        elif plan.transposed:
            tex = tex + self.num_textures
        order = values[plan.order]
        rows[_TEXR:_TEXR] = [tex, order if float_order else self._scalar(0.0).expand(v), env]
        f = torch.stack([r if r.dtype == torch.float32 else r.to(torch.float32) for r in rows])
        k = plan.tiles
        if k > 1:  # cut the patch into k×k tiles of side q
            f = f.repeat_interleave(k * k, 1)
            f.view(f.shape[0], -1, k * k)[_H:_H + 2] -= plan.shift
            if not float_order:
                order = order.repeat_interleave(k * k, 0)
        return f, (None if float_order else order.long())

    def _pixels(self, f, extent, order, cx, cy, scale, general, tiled, q):
        """Keys and flat canvas indices ``[q, q, V]`` of every instance's patch (instances last:
        every elementwise operation then runs along a contiguous dimension)."""
        env = f[_ENV].long()
        if isinstance(cx, torch.Tensor) or isinstance(cy, torch.Tensor):  # a camera per environment
            cx, cy = torch.broadcast_tensors(torch.as_tensor(cx, dtype=torch.float32, device=self.device),
                                             torch.as_tensor(cy, dtype=torch.float32, device=self.device))
            cam_env = env if self.compact else env.clamp(max=cx.shape[0] - 1)  # the trash frame uses the last camera
            cam = torch.stack([cx, cy]).index_select(1, cam_env)
        else:
            cam = self._const(("cam", float(cx), float(cy)),
                              lambda: torch.tensor([[cx], [cy]], dtype=torch.float32, device=self.device))
        axis = self._const(("axis", scale), lambda: torch.tensor([[scale], [-scale]], dtype=torch.float32, device=self.device))
        # pixel-space centre, as scale·(x − cx) + 32 and scale·(cy − y) + 32
        p = (f[_X:_X + 2] - cam).mul_(axis).add_(FRAME / 2)  # [2, V]
        origin = torch.floor(p).sub_(f[_H:_H + 2])  # first patch column and row
        offsets = self._const(("offsets", q), lambda: torch.arange(q, dtype=torch.float32, device=self.device)[:, None] + 0.5)
        centre = origin[:, None, :] + offsets  # [2, q, V] pixel centres: columns and rows + 0.5 (exact)
        d = centre - p[:, None, :]  # pixel centre relative to the sprite centre
        # the sprite coordinates in [0, 1) inside the box: d / side + 1/2
        if general:
            cs = f[_AB:_AB + 2]
            conj = self._const(("conj",), lambda: torch.tensor([[1.0], [-1.0]], device=self.device))
            col = d[:1] * (cs * conj)[:, None, :]  # (cos·dx, −sin·dx) [2, q, V]
            row = d[1:] * cs.flip(0)[:, None, :]  # (sin·dy, cos·dy)
            # u = cos·dx + sin·dy, v = cos·dy − sin·dx: [2, q(row), q(col), V]
            uv = (col[:, None] + row[:, :, None]).div_(extent[:, None, None, :]).add_(0.5)
        else:  # u from the columns, v from the rows (sign per axis; odd turns use the transposed atlas)
            uv = (d * f[_AB:_AB + 2, None, :]).div_(extent[:, None, :]).add_(0.5)  # [2, q, V]
        if tiled:
            outside = (uv < 0) | (uv >= 1)
            reps = f[_TILE:_TILE + 2, None, None, :] if general else f[_TILE:_TILE + 2, None, :]
            uv = torch.where(outside, -1.0, torch.frac(uv * reps))
        # the texture's own texels (full resolution, sampled once: nearest, as Qt without smoothing)
        info = self.texture_info.index_select(1, f[_TEXR].long())  # width, height, stride, base [4, V]
        size = info[:2, None, None, :] if general else info[:2, None, :]
        uv = uv.mul_(size).ceil_().sub_(1.0).clamp_(min=-1.0)
        uv = torch.minimum(uv, size, out=uv)  # texel coordinates; -1 and the width/height: the transparent border
        if general:
            texel = torch.addcmul(uv[0].add_(info[3]), uv[1], info[2]).long()
        else:
            texel = torch.addcmul(info[3], uv[1], info[2]).long()[:, None, :] + uv[0].long()
        key = self.texel_key.index_select(0, texel.view(-1)).view(texel.shape)
        if order is None:  # float orders (< 2**24): (order + 1)·2**32 is exact in float32
            key += f[_ORD].add(1.0).mul_(float(1 << ORDER_SHIFT)).long()
        else:
            key += (order + 1) << ORDER_SHIFT
        # pixel index = centre − 0.5; off-canvas ones (−1, FRAME) → the trash row/column FRAME
        where = torch.remainder(centre.clamp_(-0.5, FRAME + 0.5), CANVAS).long()
        rows = torch.add(env * (CANVAS * CANVAS), where[1], alpha=CANVAS)  # [q, V]
        pixel = rows[:, None, :] + where[0]
        return key, pixel


def _axes(sb: SpriteBatch, general: bool) -> tuple:
    """A batch's rows ``a, b`` of the instance table (floats or ``[N, slots]`` tensors): the
    (cos, sin) of its rotation in the general pass, the signs of the column and row
    coordinates in the separable one (see ``Renderer._pixels``), flips applied; whether the
    separable pass uses the transposed atlas (odd quarter turns for the whole batch); and
    whether ``a, b`` were derived from the batch (a rotation, a flip): then anew every frame."""
    per_slot_turns = isinstance(sb.quarter_turns, torch.Tensor)
    turns = 0 if per_slot_turns else sb.quarter_turns % 4
    if general:
        if sb.cos is not None:
            a, b = sb.cos, sb.sin
        elif sb.rotation is not None:
            a, b = torch.cos(sb.rotation), torch.sin(sb.rotation)
        else:
            a, b = [(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)][turns]
    else:
        a, b = [(1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0), (1.0, -1.0)][turns]
    if sb.flip is not None:
        if per_slot_turns:
            raise ValueError("per-slot quarter turns and flips cannot be combined")
        sign = 1.0 - 2.0 * sb.flip.to(torch.float32)
        a, b = sign * a, sign * b
    derived = (general and sb.cos is None and sb.rotation is not None) or sb.flip is not None
    return a, b, not general and turns % 2 == 1, derived


class _Plan:
    """What a :class:`Renderer` needs to gather one sprite batch's instances.

    ``rows`` lists, for every float row of the instance table, an index into the gathered
    values or ``("const", value)``; ``tex``/``order``/``turns`` index the gathered values too.
    Fields that are rows of one planar table (same storage, unit column stride, equal row
    stride) are gathered together with one ``index_select`` on the storage, no copy made."""

    def __init__(self, r: Renderer, sb: SpriteBatch, n: int, general: bool, tiled: bool, q: int):
        self.batch, self.general, self.tiled = sb, general, tiled
        slots = self.slots = sb.visible.shape[1]
        per_slot_turns = isinstance(sb.quarter_turns, torch.Tensor)
        a, b, self.transposed, self.volatile = _axes(sb, general)  # volatile: derived per frame, no caching
        self.by_texture = sb.rx is None
        self.extent_by_texture = sb.extent_by_texture
        self.deferred_extent = sb.extent_by_texture if self.by_texture and not self.transposed and not per_slot_turns else None
        self.float_order = sb.order.dtype.is_floating_point
        ex, ey = (sb.rx, sb.ry) if not self.transposed else (sb.ry, sb.rx)
        half = float(sb.patch // 2)
        cols = [sb.x, sb.y, 0.0 if self.by_texture else ex, 0.0 if self.by_texture else ey, a, b, half, half]
        if tiled:
            tu = sb.tiles_u if sb.tiles_u is not None else 1.0
            tv = sb.tiles_v if sb.tiles_v is not None else 1.0
            cols += [tu, tv] if not self.transposed else [tv, tu]
        tensors: list[torch.Tensor] = []
        index: dict[int, int] = {}

        def slot(c):
            if not isinstance(c, torch.Tensor):
                return ("const", float(c))
            if id(c) not in index:
                index[id(c)] = len(tensors)
                tensors.append(c)
            return index[id(c)]

        self.rows = [slot(c) for c in cols]
        self.tex, self.order = slot(sb.texture), slot(sb.order)
        self.turns = slot(sb.quarter_turns) if per_slot_turns else None
        self.tiles = k = -(-sb.patch // q)
        if k > 1:
            self.shift = r._const(("shift", k, q), lambda: torch.tensor(
                [[q * i for j in range(k) for i in range(k)], [q * j for j in range(k) for i in range(k)]],
                dtype=torch.float32, device=r.device)[:, None, :])
        self.fulls = fulls = [t.expand(n, slots) for t in tensors]
        self.count = len(fulls)
        if not r.compact:
            self.env_ids = r._const(("env", n, slots), lambda: torch.arange(n, device=r.device).repeat_interleave(slots))
            return
        # compact: group the planar rows
        self.groups: list[tuple] = []  # (storage, alpha, offsets [g, 1] or int, positions)
        self.singles: list[tuple] = []  # (flat tensor, position)
        by_key: dict[tuple, list[int]] = {}
        for i, t in enumerate(fulls):
            if t.is_contiguous():
                self.singles.append((t.view(-1), i))
            elif t.stride(1) == 1:
                by_key.setdefault((t.untyped_storage().data_ptr(), t.stride(0), t.dtype), []).append(i)
            else:
                self.singles.append((None, i))  # copied per frame
        for (_, row_stride, _), members in by_key.items():
            first = fulls[members[0]]
            storage = torch.as_strided(first, (first.untyped_storage().nbytes() // first.element_size(),), (1,), 0)
            offsets = [fulls[i].storage_offset() for i in members]
            off = offsets[0] if len(members) == 1 else torch.tensor(offsets, device=r.device)[:, None]
            self.groups.append((storage, row_stride, off, members))

    def gather(self, env: torch.Tensor, slot: torch.Tensor) -> list[torch.Tensor]:
        """Every field at the selected ``(env, slot)`` pairs."""
        values: list = [None] * self.count
        where: dict[int, torch.Tensor] = {}  # flat index env·row_stride + slot, by row stride
        for flat, i in self.singles:
            sel = where.get(self.slots)
            if sel is None:
                sel = where[self.slots] = torch.add(slot, env, alpha=self.slots)
            values[i] = (flat if flat is not None else self.fulls[i].reshape(-1)).index_select(0, sel)
        for storage, row_stride, off, members in self.groups:
            w = where.get(row_stride)
            if w is None:
                w = where[row_stride] = torch.add(slot, env, alpha=row_stride)
            if isinstance(off, int):
                values[members[0]] = storage.index_select(0, w + off)
            else:
                picked = storage.index_select(0, (w + off).view(-1)).view(len(members), -1)
                for i, row in zip(members, picked.unbind(0)):
                    values[i] = row
        return values


# -- the C kernel's view of the sprite batches (the structs of envs/native/render.c) ------------
_KIND_CONST, _KIND_F32, _KIND_I64, _KIND_U8 = 0, 1, 2, 3
_NATIVE_FIELDS = ["x", "y", "rx", "ry", "a", "b", "texture", "order", "visible", "tiles_u", "tiles_v", "turns"]


class _NativeField(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("env_stride", ctypes.c_int64), ("slot_stride", ctypes.c_int64),
                ("kind", ctypes.c_int64), ("constant", ctypes.c_float), ("pad", ctypes.c_float)]


class _NativeBatch(ctypes.Structure):
    _fields_ = [("field", _NativeField * len(_NATIVE_FIELDS)), ("slots", ctypes.c_int64), ("span", ctypes.c_int64),
                ("half", ctypes.c_int64), ("transposed", ctypes.c_int64), ("per_slot_turns", ctypes.c_int64),
                ("extent", ctypes.c_void_p), ("extent_stride", ctypes.c_int64)]


class _NativeTable:
    """The sprite batches of a frame as the kernel reads them: each field a strided
    ``[num_envs, slots]`` tensor or a constant, with the same per-batch choices as ``_Plan``
    (rotation as cos/sin in the general pass, axis signs in the separable one). ``volatile``
    when some field had to be derived (a rotation's cos/sin, a flip, a dtype the kernel does
    not read): then it is rebuilt every frame."""

    def __init__(self, batches: list[SpriteBatch], n: int):
        self.batches = list(batches)
        self.general = any(sb.free_rotation for sb in batches)
        self.tiled = any(sb.tiles_u is not None or sb.tiles_v is not None for sb in batches)
        self.volatile = False
        self.keep: list[torch.Tensor] = []  # every tensor the structs point into
        self.structs = (_NativeBatch * max(1, len(batches)))()
        q = min((sb.patch for sb in batches), default=1)
        for struct, sb in zip(self.structs, batches):
            self._describe(struct, sb, n, q)

    def _field(self, struct: _NativeField, value, n: int, slots: int) -> None:
        if value is None or not isinstance(value, torch.Tensor):
            struct.kind, struct.constant = _KIND_CONST, 1.0 if value is None else float(value)  # absent: tiles of 1
            return
        if value.device.type != "cpu":
            raise ValueError(f"the native renderer reads CPU tensors, got one on {value.device}")
        if value.dtype in (torch.bool, torch.uint8):
            kind = _KIND_U8
        elif value.dtype == torch.float32 or value.dtype == torch.int64:
            kind = _KIND_F32 if value.dtype == torch.float32 else _KIND_I64
        else:  # another dtype: converted, every frame
            self.volatile = True
            value = value.to(torch.float32 if value.dtype.is_floating_point else torch.int64)
            kind = _KIND_F32 if value.dtype == torch.float32 else _KIND_I64
        value = value.expand(n, slots)
        self.keep.append(value)
        struct.data, struct.kind = value.data_ptr(), kind
        struct.env_stride, struct.slot_stride = value.stride()

    def _describe(self, struct: _NativeBatch, sb: SpriteBatch, n: int, q: int) -> None:
        slots = sb.visible.shape[1]
        per_slot_turns = isinstance(sb.quarter_turns, torch.Tensor)
        a, b, transposed, derived = _axes(sb, self.general)
        self.volatile |= derived
        if sb.rx is None:
            if sb.extent_by_texture is None:
                raise ValueError("a sprite batch with rx = ry = None needs extent_by_texture")
            extent = sb.extent_by_texture.to(dtype=torch.float32, device="cpu").contiguous()
            self.keep.append(extent)
            struct.extent, struct.extent_stride = extent.data_ptr(), extent.stride(0)
        else:
            struct.extent = None
        values = dict(x=sb.x, y=sb.y, rx=sb.rx, ry=sb.ry, a=a, b=b, texture=sb.texture, order=sb.order,
                      visible=sb.visible, tiles_u=sb.tiles_u, tiles_v=sb.tiles_v,
                      turns=sb.quarter_turns if per_slot_turns else None)
        for field, name in zip(struct.field, _NATIVE_FIELDS):
            self._field(field, values[name], n, slots)
        struct.slots = slots
        struct.span = -(-sb.patch // q) * q
        struct.half = sb.patch // 2
        struct.transposed = int(transposed)
        struct.per_slot_turns = int(per_slot_turns)
