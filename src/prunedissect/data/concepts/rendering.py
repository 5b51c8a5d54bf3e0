"""Rendering a :class:`~.specs.SceneSpec` into an RGB image and pixel-exact label maps."""

from __future__ import annotations

import math

import numpy as np

from prunedissect.data.concepts.geometry import (
    _object_parts,
    _pattern_mask,
    _pixel_centres,
    _Placed,
    _window,
)
from prunedissect.data.concepts.specs import (
    ObjectSpec,
    Pattern,
    RenderedImage,
    SceneSpec,
    SwatchSpec,
)
from prunedissect.data.concepts.vocabulary import (
    _NUMBER,
    COLOURS,
    FIXED_PART_COLOURS,
    MIN_IMAGE_SIZE,
    SHAPE_PARTS,
)

#: How far a texture's second tone departs from the base colour, on objects and backgrounds
#: (backgrounds are calmer so that objects stand out).
OBJECT_CONTRAST = 0.26
BACKGROUND_CONTRAST = 0.22
#: Texture swatches show their pattern boldly, as the photographs of textures Broden's come
#: from do: there the texture is the picture, not a surface detail (README, "The concept world",
#: gives the level-0 concepts found at 0.26, 0.5 and 0.7).
SWATCH_CONTRAST = 0.7


def _second_tone(rgb: np.ndarray, contrast: float) -> np.ndarray:
    """The texture's second tone: lighter for dark colours, darker for light ones."""
    luminance = float(rgb @ np.array([0.299, 0.587, 0.114]))
    return rgb + (1 - rgb) * contrast if luminance < 0.36 else rgb * (1 - contrast)


#: Brightness of a metal object's four shading bands, and where its highlight lies.
METAL_BANDS = (0.7, 0.9, 1.08, 1.26)
METAL_HIGHLIGHT = (0.3, 0.48)
GLASS_OPACITY = 0.45


class _Palette:
    """Paints by palette index (cheap 2-D writes); :meth:`rgb` turns the indices into colours."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.index = np.zeros(shape, dtype=np.int32)
        self.colours: list[np.ndarray] = []

    def paint(
        self, window, mask: np.ndarray, tones: np.ndarray, shade: np.ndarray | None = None
    ) -> None:
        """Paint ``tones[shade, tone]`` where ``mask`` holds (``tones``: (n_shades, 2, 3))."""
        tone = tones.shape[1] * (0 if shade is None else shade[mask]) + self._tone[mask]
        self.index[window][mask] = len(self.colours) + tone
        self.colours.extend(tones.reshape(-1, 3))

    def glaze(self, window, mask: np.ndarray, tones: np.ndarray) -> None:
        """Lay translucent ``tones[0, tone]`` over what is painted where ``mask`` holds."""
        beneath = self.index[window][mask]
        key = beneath * 2 + self._tone[mask]
        unique, inverse = np.unique(key, return_inverse=True)
        under = np.asarray(self.colours)[unique // 2]
        self.index[window][mask] = len(self.colours) + inverse.ravel()
        mixed = GLASS_OPACITY * tones[0, unique % 2] + (1 - GLASS_OPACITY) * under
        self.colours.extend(mixed)

    def texture(self, pattern: Pattern, x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> None:
        """Set the pattern whose second tone the next :meth:`paint` or :meth:`glaze` uses,
        evaluated where ``mask`` holds."""
        self._tone = np.zeros(mask.shape, dtype=np.int32)
        if pattern.texture != "plain":
            self._tone[mask] = _pattern_mask(pattern, x[mask], y[mask])

    def rgb(self) -> np.ndarray:
        return np.asarray(self.colours)[self.index]


def _tones(rgb: np.ndarray, contrast: float) -> np.ndarray:
    """Base colour and texture tone, shape (1, 2, 3)."""
    return np.stack([rgb, _second_tone(rgb, contrast)])[None]


def _metal_tones(rgb: np.ndarray, contrast: float) -> np.ndarray:
    """Base and texture tone for each metal shading band and the highlight, (5, 2, 3)."""
    bands = [np.clip(rgb * factor, 0, 1) for factor in METAL_BANDS]
    bands.append(rgb + (1 - rgb) * 0.6)
    return np.stack([_tones(band, contrast)[0] for band in bands])


def _metal_shade(placed: _Placed, sheen: float) -> np.ndarray:
    """Shading band (0..3) or highlight (4) of each point of a metal object."""
    t = placed.u * math.cos(sheen) + placed.v * math.sin(sheen)
    shade = np.clip(np.floor((t + 1) * 2), 0, 3).astype(np.int32)
    shade[(t > METAL_HIGHLIGHT[0]) & (t < METAL_HIGHLIGHT[1])] = 4
    return shade


_LAYERED = ("color", "object", "part", "material")


def _draw(spec: SceneSpec, resolution: int, *, colours: bool) -> dict[str, np.ndarray]:
    """Label layers (2, R, R) per category, the topmost instance and, with ``colours``, the
    float RGB image, at the centres of a ``resolution`` grid."""
    x, y = _pixel_centres(resolution)
    shape = (resolution, resolution)
    out = {name: np.zeros((2, *shape), dtype=np.int32) for name in _LAYERED}
    out["instance"] = np.zeros(shape, dtype=np.int32)
    palette = _Palette(shape) if colours else None
    height, amplitude, frequency, phase = spec.horizon
    sky = y < height + amplitude * np.sin(2 * math.pi * frequency * x + phase)
    for region, mask in ((spec.sky, sky), (spec.ground, ~sky)):
        out["color"][0][mask] = _NUMBER[region.colour]
        if palette is not None:
            palette.texture(region.pattern, x, y, mask)
            palette.paint(..., mask, _tones(region.rgb, BACKGROUND_CONTRAST))
    for k, obj in enumerate(spec.objects):
        window = _window(obj, resolution)
        placed = _object_parts(obj, x[window], y[window])
        views = {name: out[name][:, window[0], window[1]] for name in _LAYERED}
        for part, mask in zip(SHAPE_PARTS[obj.shape], placed.parts, strict=True):
            colour, rgb, pattern = _part_look(obj, part)
            labels = {
                "color": _NUMBER[colour],
                "object": _NUMBER[obj.shape],
                "part": _NUMBER[f"{obj.shape}-{part}"],
                "material": _NUMBER[obj.material],
            }
            for name, number in labels.items():
                layers = views[name]
                # glass keeps what lies beneath as the second layer; opaque paint hides it
                layers[1][mask] = layers[0][mask] if obj.material == "glass" else 0
                layers[0][mask] = number
            out["instance"][window][mask] = k + 1
            if palette is not None:
                palette.texture(pattern, placed.dx, placed.dy, mask)
                if obj.material == "glass":
                    palette.glaze(window, mask, _tones(rgb, OBJECT_CONTRAST))
                elif obj.material == "metal":
                    shade = _metal_shade(placed, obj.sheen)
                    palette.paint(window, mask, _metal_tones(rgb, OBJECT_CONTRAST), shade)
                else:
                    palette.paint(window, mask, _tones(rgb, OBJECT_CONTRAST))
    if palette is not None:
        out["rgb"] = palette.rgb()
    return out


def _part_look(obj: ObjectSpec, part: str) -> tuple[str, np.ndarray, Pattern]:
    """Colour name, RGB and texture of one part: the object's, or a fixed plain colour."""
    fixed = FIXED_PART_COLOURS.get((obj.shape, part))
    if fixed is None:
        return obj.colour, obj.rgb, obj.pattern
    colour = fixed[1] if obj.colour == fixed[0] else fixed[0]
    plain = Pattern("plain", 1.0, 0.0, (0.0, 0.0), obj.pattern.flecks)
    return colour, np.asarray(COLOURS[colour], dtype=float) / 255.0, plain


def supersampling(image_size: int) -> int:
    """Supersampling factor for anti-aliasing: render at >= 128 px, at most 4x."""
    return max(1, min(4, math.ceil(128 / image_size)))


def _draw_swatch(spec: SwatchSpec, resolution: int) -> np.ndarray:
    """The float RGB image of a swatch at the centres of a ``resolution`` grid."""
    x, y = _pixel_centres(resolution)
    palette = _Palette((resolution, resolution))
    everywhere = np.ones((resolution, resolution), dtype=bool)
    palette.texture(spec.pattern, x, y, everywhere)
    palette.paint(..., everywhere, _tones(spec.rgb, SWATCH_CONTRAST))
    return palette.rgb()


def _finish(fine: np.ndarray, image_size: int, brightness: float, noise_seed: int) -> np.ndarray:
    """Average the supersampled ``fine`` RGB down to ``image_size``, jitter it, as uint8."""
    factor = fine.shape[0] // image_size
    rgb = fine.reshape(image_size, factor, image_size, factor, 3).mean(axis=(1, 3))
    noise = np.random.default_rng(noise_seed).normal(0.0, 0.025, size=rgb.shape)
    return np.round(np.clip(rgb * brightness + noise, 0.0, 1.0) * 255).astype(np.uint8)


def render(spec: SceneSpec | SwatchSpec, image_size: int) -> RenderedImage:
    """Render ``spec`` as an ``image_size`` square image with its pixel-exact label layers."""
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be at least {MIN_IMAGE_SIZE} px, got {image_size}")
    factor = supersampling(image_size)
    if isinstance(spec, SwatchSpec):
        fine = _draw_swatch(spec, image_size * factor)
        shape = (image_size, image_size)
        return RenderedImage(
            image=_finish(fine, image_size, spec.brightness, spec.noise_seed),
            pixel={"color": np.full((1, *shape), _NUMBER[spec.colour], dtype=np.int32)},
            image_level={"texture": _NUMBER[spec.pattern.texture]},
            instance=np.zeros(shape, dtype=np.int32),
        )
    labels = _draw(spec, image_size, colours=False)
    fine = _draw(spec, image_size * factor, colours=True)["rgb"]
    pixel = {}
    for name in _LAYERED:
        layers = labels[name]
        used = [k for k in range(len(layers)) if layers[k].any()]
        pixel[name] = layers[: used[-1] + 1] if used else layers[:0]
    return RenderedImage(
        image=_finish(fine, image_size, spec.brightness, spec.noise_seed),
        pixel=pixel,
        image_level={"scene": _NUMBER[spec.scene]},
        instance=labels["instance"],
    )
