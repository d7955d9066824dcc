"""Batched sprite renderer: 64×64×3 uint8 frames for every environment in one pass.

Each visible entity is drawn as a small square patch of pixels around its box. For every
patch pixel we inverse-map the pixel centre into the (possibly rotated, possibly tiled)
sprite and sample the nearest texel, as Qt's non-smooth painter does. The painter's
algorithm is replaced by a max-reduction: each drawn pixel carries the key
``draw_order << 24 | rgb`` and ``scatter_reduce(amax)`` keeps the topmost one. That is
order-independent and deterministic on every device, and needs no loop over entities.

Sprites are the CC0 PNG files shipped in the installed ``procgen-mirror`` package. When
those files are absent, every sprite becomes a flat rectangle in Procgen's monochrome
colour for its type and theme (spec §1.10.7).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

FRAME = 64  # observation side, pixels
TEX = 64  # every sprite is resampled (nearest) to TEX×TEX texels; sprites are stretched to their box anyway

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

    ``x, y, rx, ry`` are the world-space centre and half-extents; ``texture`` indexes the
    game's texture list; ``order`` (0 ≤ order < 2**38) is the draw order, larger on top;
    ``patch`` is the side, in pixels, of a square that surely covers the drawn box (rotated
    included). Rotation is clockwise on screen: ``quarter_turns`` (0-3, the whole batch) plus
    ``flip`` (a further half turn, per slot) cover every sprite in these games but one;
    ``rotation`` (radians, per slot) is the general, slower form. ``tiles_u``/``tiles_v``
    repeat the sprite that many times across the box.
    """

    x: torch.Tensor
    y: torch.Tensor
    rx: torch.Tensor
    ry: torch.Tensor
    texture: torch.Tensor
    order: torch.Tensor
    visible: torch.Tensor
    patch: int
    quarter_turns: int = 0
    flip: torch.Tensor | None = None
    rotation: torch.Tensor | None = None
    tiles_u: torch.Tensor | None = None
    tiles_v: torch.Tensor | None = None


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


@functools.lru_cache(maxsize=None)
def _load_sprite(path: str) -> np.ndarray:
    """RGBA sprite resampled (nearest) to TEX×TEX, colour premultiplied by alpha."""
    from PIL import Image

    img = Image.open(path).convert("RGBA").resize((TEX, TEX), Image.Resampling.NEAREST)
    rgba = np.asarray(img).astype(np.int64)
    rgba[..., :3] = rgba[..., :3] * rgba[..., 3:] // 255
    return rgba


class Renderer:
    """Draws a game's sprite batches into ``[num_envs, 64, 64, 3]`` uint8 frames."""

    def __init__(self, textures: list[TextureSpec], device: torch.device | str, monochrome: bool = False):
        folder = None if monochrome else procgen_asset_dir()
        if folder is None and not monochrome:
            warnings.warn("procgen-mirror's sprite files were not found; drawing monochrome rectangles instead",
                          stacklevel=2)
        self.monochrome = folder is None
        atlas = np.zeros((len(textures), TEX, TEX, 4), dtype=np.int64)
        for i, spec in enumerate(textures):
            if self.monochrome:
                atlas[i, ..., :3] = monochrome_colour(spec.mono_type, spec.mono_theme)
                atlas[i, ..., 3] = 255
            else:
                atlas[i] = _load_sprite(str(folder / spec.file))
        # Little-endian byte order r, g, b: the canvas's low three bytes are then the frame itself.
        packed = atlas[..., 0] | (atlas[..., 1] << 8) | (atlas[..., 2] << 16)
        self.device = torch.device(device)
        self.texel_rgb = torch.as_tensor(packed.reshape(-1), device=self.device)
        self.texel_opaque = torch.as_tensor(atlas[..., 3].reshape(-1) >= 128, device=self.device)

    def render(self, cx: torch.Tensor, cy: torch.Tensor, scale: float, batches: list[SpriteBatch]) -> torch.Tensor:
        """Frames for camera centres ``(cx, cy)`` (world units, ``[num_envs]``) at ``scale`` px per unit:
        a ``[num_envs, 64, 64, 3]`` uint8 view into the key canvas."""
        num_envs = cx.shape[0]
        assert sys.byteorder == "little", "the canvas is decoded as little-endian bytes"
        keys, where = [], []
        for sb in batches:
            k, w = self._patch_keys(cx, cy, scale, sb)
            keys.append(k)
            where.append(w)
        canvas = torch.zeros(num_envs * FRAME * FRAME, dtype=torch.int64, device=cx.device)
        if keys:
            canvas.scatter_reduce_(0, torch.cat(where), torch.cat(keys), reduce="amax")
        # A strided view (no copy): callers that need contiguous memory call .contiguous().
        return canvas.view(torch.uint8).view(num_envs, FRAME, FRAME, 8)[..., :3]

    def _patch_keys(self, cx, cy, scale, sb: SpriteBatch):
        """Pixel keys and flat canvas indices of every visible slot's patch (compacted first).

        Without a free rotation the sprite coordinate u depends on the pixel column only and
        v on the row only (or the reverse, for odd quarter turns), so both are computed as
        vectors and only the texel lookup and the key are done per pixel.
        """
        slots = sb.visible.shape[1]
        sel = sb.visible.reshape(-1).nonzero().squeeze(1)
        env = sel // slots

        def pick(t):
            return t.reshape(-1)[sel]

        pcx = scale * (pick(sb.x) - cx[env]) + FRAME / 2
        pcy = scale * (cy[env] - pick(sb.y)) + FRAME / 2
        width, height = 2 * scale * pick(sb.rx), 2 * scale * pick(sb.ry)
        offsets = torch.arange(sb.patch, device=cx.device, dtype=torch.float32) - sb.patch // 2
        col = (torch.floor(pcx)[:, None] + offsets)[:, None, :]  # [n, 1, P]
        row = (torch.floor(pcy)[:, None] + offsets)[:, :, None]  # [n, P, 1]
        dx = col + 0.5 - pcx[:, None, None]
        dy = row + 0.5 - pcy[:, None, None]
        if sb.rotation is not None:  # free rotation: inverse-rotate every pixel centre
            angle = pick(sb.rotation)[:, None, None]
            cos, sin = torch.cos(angle), torch.sin(angle)
            dx, dy = cos * dx + sin * dy, cos * dy - sin * dx
        else:  # a multiple of a quarter turn: swap and negate the axis vectors
            for _ in range(sb.quarter_turns % 4):
                dx, dy = dy, -dx
        if sb.flip is not None:
            sign = 1.0 - 2.0 * pick(sb.flip).to(torch.float32)[:, None, None]
            dx, dy = dx * sign, dy * sign
        u = dx / width[:, None, None] + 0.5
        v = dy / height[:, None, None] + 0.5
        inside = ((u >= 0) & (u < 1)) & ((v >= 0) & (v < 1))
        on_canvas = ((col >= 0) & (col < FRAME)) & ((row >= 0) & (row < FRAME))
        if sb.tiles_u is not None:
            u = torch.frac(u * pick(sb.tiles_u)[:, None, None])
        if sb.tiles_v is not None:
            v = torch.frac(v * pick(sb.tiles_v)[:, None, None])
        tx = (u * TEX).long().clamp_(0, TEX - 1)
        ty = (v * TEX).long().clamp_(0, TEX - 1)
        texel = (pick(sb.texture)[:, None, None] * (TEX * TEX) + ty * TEX) + tx
        drawn = (inside & on_canvas) & self.texel_opaque[texel]
        key = torch.where(drawn, self.texel_rgb[texel] | ((pick(sb.order) + 1) << 24)[:, None, None], 0)
        pixel = (env * (FRAME * FRAME))[:, None, None] + row.long().clamp(0, FRAME - 1) * FRAME + col.long().clamp(0, FRAME - 1)
        return key.reshape(-1), pixel.reshape(-1)
