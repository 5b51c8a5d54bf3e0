"""Geometry: pixel centres, shape and part masks, placed objects and texture patterns."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from prunedissect.data.concepts.specs import ObjectSpec, Pattern
from prunedissect.data.concepts.vocabulary import SHAPES, TEXTURES


def _pixel_centres(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    centres = (np.arange(resolution, dtype=float) + 0.5) / resolution
    return np.meshgrid(centres, centres, indexing="xy")


def _in_polygon(u: np.ndarray, v: np.ndarray, vertices: list[tuple[float, float]]) -> np.ndarray:
    """Even-odd rule point-in-polygon test, vectorised over the points (u, v)."""
    inside = np.zeros(u.shape, dtype=bool)
    for (u1, v1), (u2, v2) in zip(vertices, vertices[1:] + vertices[:1], strict=True):
        if v1 == v2:
            continue  # a horizontal edge is never crossed by a horizontal ray
        crosses = (v1 > v) != (v2 > v)
        inside ^= crosses & (u < (u2 - u1) / (v2 - v1) * (v - v1) + u1)
    return inside


def _box(u, v, u0, u1, v0, v1):
    return (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)


def _disc(u, v, cu, cv, r):
    return (u - cu) ** 2 + (v - cv) ** 2 <= r * r


def _star_vertices(points: int, outer: float, inner: float) -> tuple[list, list]:
    star, core = [], []
    for k in range(2 * points):
        angle = -math.pi / 2 + k * math.pi / points
        radius = outer if k % 2 == 0 else inner
        star.append((radius * math.cos(angle), radius * math.sin(angle)))
        if k % 2:
            core.append(star[-1])
    return star, core


_STAR, _STAR_CORE = _star_vertices(5, 0.98, 0.42)


def _shape_masks(shape: str, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the shape's two parts (paint order) in its unit box (u right, v down)."""
    if shape == "house":
        return _box(u, v, -0.62, 0.62, -0.12, 0.85), _in_polygon(
            u, v, [(-0.88, -0.1), (0, -0.88), (0.88, -0.1)]
        )
    if shape == "tree":
        return _box(u, v, -0.15, 0.15, 0.05, 0.92), _disc(u, v, 0, -0.25, 0.64)
    if shape == "fish":
        return _in_polygon(u, v, [(0.3, 0), (0.92, -0.5), (0.92, 0.5)]), (
            ((u + 0.15) / 0.64) ** 2 + (v / 0.4) ** 2 <= 1
        )
    if shape == "car":
        body = _box(u, v, -0.92, 0.92, -0.22, 0.36) | _box(u, v, -0.45, 0.4, -0.66, -0.2)
        return body, _disc(u, v, -0.5, 0.4, 0.25) | _disc(u, v, 0.5, 0.4, 0.25)
    if shape == "star":
        return _in_polygon(u, v, _STAR), _in_polygon(u, v, _STAR_CORE)
    if shape == "mushroom":
        cap = ((u / 0.88) ** 2 + ((v + 0.05) / 0.8) ** 2 <= 1) & (v <= -0.05)
        return _box(u, v, -0.24, 0.24, -0.1, 0.85), cap
    if shape == "arrow":
        return _box(u, v, -0.92, 0.2, -0.14, 0.14), _in_polygon(
            u, v, [(0.1, -0.52), (0.92, 0), (0.1, 0.52)]
        )
    if shape == "hammer":
        return _box(u, v, -0.12, 0.12, -0.45, 0.92), _box(u, v, -0.66, 0.66, -0.86, -0.42)
    if shape == "flower":
        petals = np.zeros(u.shape, dtype=bool)
        for k in range(5):
            angle = -math.pi / 2 + 2 * math.pi * k / 5
            petals |= _disc(u, v, 0.52 * math.cos(angle), 0.52 * math.sin(angle), 0.38)
        return petals, _disc(u, v, 0, 0, 0.32)
    if shape == "bottle":
        body = _in_polygon(
            u,
            v,
            [
                (-0.45, 0.92),
                (0.45, 0.92),
                (0.45, -0.05),
                (0.17, -0.32),
                (-0.17, -0.32),
                (-0.45, -0.05),
            ],
        )
        return body, _box(u, v, -0.17, 0.17, -0.88, -0.3)
    raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")


def _window(obj: ObjectSpec, resolution: int) -> tuple[slice, slice]:
    """The (rows, columns) slice of a ``resolution`` grid holding the object's unit box."""
    cos, sin = abs(math.cos(obj.angle)), abs(math.sin(obj.angle))
    half_x = obj.size * (obj.aspect[0] * cos + obj.aspect[1] * sin)
    half_y = obj.size * (obj.aspect[0] * sin + obj.aspect[1] * cos)

    def span(centre: float, half: float) -> slice:
        start = max(0, math.floor((centre - half) * resolution))
        return slice(
            start, max(start, min(resolution, math.ceil((centre + half) * resolution) + 1))
        )

    return span(obj.centre[1], half_y), span(obj.centre[0], half_x)


@dataclass(frozen=True)
class _Placed:
    """An object evaluated on a grid window: exclusive part masks (2, h, w), the offsets from
    its centre in image units (textures follow the object) and its own unit-box coordinates."""

    parts: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    u: np.ndarray
    v: np.ndarray


def _object_parts(obj: ObjectSpec, x: np.ndarray, y: np.ndarray) -> _Placed:
    """Evaluate ``obj`` at the image-plane points ``(x, y)``."""
    dx, dy = x - obj.centre[0], y - obj.centre[1]
    cos, sin = math.cos(obj.angle), math.sin(obj.angle)
    u = (dx * cos + dy * sin) / (obj.size * obj.aspect[0])
    v = (-dx * sin + dy * cos) / (obj.size * obj.aspect[1])
    if obj.mirror:
        u = -u
    first, second = _shape_masks(obj.shape, u, v)
    return _Placed(np.stack([first & ~second, second]), dx, dy, u, v)


def _pattern_mask(pattern: Pattern, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where the texture's second tone lies (bool), for points in image units."""
    period = pattern.period
    cos, sin = math.cos(pattern.angle), math.sin(pattern.angle)
    a = (x * cos + y * sin) / period + pattern.phase[0]
    b = (-x * sin + y * cos) / period + pattern.phase[1]
    texture = pattern.texture
    if texture == "plain":
        return np.zeros(x.shape, dtype=bool)
    if texture == "striped":
        return (a % 1.0) < 0.5
    if texture == "chequered":
        return (np.floor(a / 0.75) + np.floor(b / 0.75)) % 2 == 1
    if texture == "dotted":
        return ((a % 1.0) - 0.5) ** 2 + ((b % 1.0) - 0.5) ** 2 < 0.3**2
    if texture == "wavy":
        return ((b + 0.35 * np.sin(2 * math.pi * a / 2.0)) % 1.0) < 0.5
    if texture == "zigzagged":
        triangle = 2 * np.abs(2 * ((a / 1.2) % 1.0) - 1) - 1
        return ((b + 0.45 * triangle) % 1.0) < 0.5
    if texture == "grid":
        return ((a % 1.0) < 0.28) | ((b % 1.0) < 0.28)
    if texture == "flecked":
        i = np.floor(a * 2).astype(np.int64) % 16
        j = np.floor(b * 2).astype(np.int64) % 16
        return pattern.flecks[i, j]
    raise ValueError(f"unknown texture {texture!r}; known: {TEXTURES}")
