"""The unit x concept IoU tally of network dissection (Bau et al., CVPR 2017).

For unit ``k`` with threshold ``T_k`` and image ``i``, the unit's mask ``M_ki`` is its activation
map upsampled bilinearly to the segmentation size and binarised, ``M_ki = up(a_ki) > T_k``
(compared in float32). For concept ``j`` (a label number under one category, see
:mod:`.segments`) with mask ``L_ji`` (an image-level label is the whole image), summed over
every probe image::

    intersection[k, j] = sum_i |M_ki & L_ji|
    union[k, j]        = sum_{i in I_j} |M_ki| + sum_i |L_ji| - intersection[k, j]
    iou[k, j]          = intersection[k, j] / union[k, j]

With ``category_restricted=True`` (NetDissect's counting, the default) ``I_j`` is the set of
images in which concept ``j``'s category is labelled at all (its ``index.csv`` cell is not
empty): a unit is not penalised for firing in images nobody annotated for that category. With
``category_restricted=False`` ``I_j`` is every image. The counts are exact integers.

Differences from NetDissect-Lite's ``tally_job``, all deliberate: Lite pools a label's pixels
over every category and files it under one primary category, where here a label listed under
two categories is two concepts (rare in Broden); Lite judges whether a category is labelled in
an image from the labels under the unit's active pixels, where here it is the ``index.csv``
cell, as the method describes; Lite upsamples with ``scipy.misc.imresize``, here
``F.interpolate``.

Hot path, per batch of images, with no Python loop over units, pixels or concepts: (i) the
batch's activation rows and segmentations are read once (:mod:`.rowfiles`) and each image's
pixel combinations renumbered locally; (ii) candidate maps are those whose raw maximum can
exceed ``T_k`` (bilinear values are convex combinations of raw ones); of these only the
windows around source cells above ``T_k`` are computed (:mod:`.windows`, bit-exact with
whole-map upsampling; whole candidate maps are upsampled where windows do not apply); (iii)
the active pixels of a chunk of windows are counted per (image, unit, pixel combination) with
one ``bincount``, and each such count is spread over the combination's concepts with one
``index_add_`` into the ``(K, J)`` table (and handed to the bootstrap with its count);
(iv) ``|M_ki|`` and the image-level intersections come from the per-(image, unit) counts,
spread over categories by the ``present`` matrix. Memory is bounded by ``max_elements`` values
per step and one batch of rows, whatever the size of the probe set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .bootstrap import BootstrapAccumulator
from .labels import iou_of
from .rowfiles import RowReader
from .segments import ProbeLabels
from .upsample import upsample
from .windows import WindowGeometry, active_in_windows, hot_cell_windows, window_geometry

DEFAULT_MAX_ELEMENTS = 1 << 24  # raw or upsampled values per step (float32: 64 MiB)


@dataclass(frozen=True)
class ConceptTally:
    """Intersections and unions of every unit with every concept, shape ``(K, J)`` each.

    ``concepts`` is :attr:`ProbeLabels.concepts` (row ``j`` describes concept ``j``).
    """

    intersection: np.ndarray
    union: np.ndarray
    concepts: pd.DataFrame
    category_restricted: bool

    @property
    def iou(self) -> np.ndarray:
        """``intersection / union``, 0 where the union is empty, float64 ``(K, J)``."""
        return iou_of(self.intersection, self.union)

    @property
    def n_units(self) -> int:
        return int(self.intersection.shape[0])


def tally_iou(
    activations: np.ndarray,
    thresholds: np.ndarray,
    labels: ProbeLabels,
    *,
    category_restricted: bool = True,
    device: torch.device | str = "cpu",
    batch_size: int = 128,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    bootstrap: BootstrapAccumulator | None = None,
    logger: logging.Logger | None = None,
) -> ConceptTally:
    """Accumulate the unit x concept intersections and unions over the whole probe set.

    ``activations`` is ``(N, K, h, w)`` (float16 memory map from extraction is fine) with rows in
    probe index order; ``thresholds`` is ``(K,)``; ``labels`` the encoded probe segmentations.
    Images are processed ``batch_size`` at a time (fewer when ``K * h * w`` exceeds
    ``max_elements``), rows are read from memory-mapped files with ``os.pread``
    (:mod:`.rowfiles`), and at most ``max_elements / 4`` upsampled values (windows, or whole
    candidate maps) are held at a time, so memory does not grow with the probe set or the
    layer. A ``bootstrap`` accumulator (:mod:`.bootstrap`) receives the same counts per image in
    the same pass.
    """
    logger = logger or logging.getLogger(__name__)
    n_images, n_units = _check_inputs(activations, thresholds, labels)
    device = torch.device(device)
    size = labels.shape
    n_concepts = len(labels.concepts)
    raw_size = n_units * activations.shape[2] * activations.shape[3]
    step = max(1, min(batch_size, max_elements // raw_size))
    geometry = window_geometry(tuple(activations.shape[2:]), size, device)
    pixels_per_step = max(1, max_elements // 4)  # values, int64 keys and masks of one chunk

    threshold = torch.as_tensor(np.asarray(thresholds, dtype=np.float32), device=device)
    combos = torch.as_tensor(labels.combos.astype(np.int64), device=device)
    intersection = torch.zeros(n_units * n_concepts, dtype=torch.int64, device=device)
    image_intersection = torch.zeros((n_units, n_concepts), dtype=torch.int64, device=device)
    active_by_category = torch.zeros(
        (n_units, len(labels.categories)), dtype=torch.int64, device=device
    )
    active_total = torch.zeros(n_units, dtype=torch.int64, device=device)

    # A bilinear value is a convex combination of its 4 source cells, so a map (or a tile of
    # it, see .windows) whose source values are at most T_k (less a margin far above float32
    # rounding; none is needed at 0, where rounding cannot change signs) has no active pixel.
    floor = threshold - threshold.abs() * 2.0**-16
    rows = RowReader(activations)
    segment_rows = RowReader(labels.segments)
    for b0 in range(0, n_images, step):
        b1 = min(n_images, b0 + step)
        # torch converts float16 (and int32) far faster than numpy
        maps = torch.from_numpy(rows.read(b0, b1)).to(device).float()
        segments = torch.from_numpy(segment_rows.read(b0, b1)).to(device).long()
        present = torch.from_numpy(np.asarray(labels.present[b0:b1])).to(device)
        image_codes = torch.from_numpy(labels.image_concepts[b0:b1].astype(np.int64)).to(device)
        local = _LocalCombos(segments, len(combos))

        counts = torch.zeros((b1 - b0) * n_units, dtype=torch.int64, device=device)
        for image, unit, combo, count in _active_combinations(
            maps, threshold, floor, local, geometry, pixels_per_step
        ):
            counts.index_add_(0, image * n_units + unit, count)
            which, flat = _pixel_cells(unit, combo, combos, n_concepts)
            intersection.index_add_(0, flat, count[which])
            if bootstrap is not None:
                bootstrap.add_pixels(image[which] + b0, flat, count[which])
        counts = counts.view(b1 - b0, n_units)  # (B, K) active pixels per image and unit
        active_total += counts.sum(dim=0)
        active_by_category += (counts[:, :, None] * present[:, None, :]).sum(dim=0)
        _add_image_intersections(image_intersection, counts, image_codes)
        if bootstrap is not None:
            pixels = _label_pixels(local, combos, image_codes, n_concepts, size)
            bootstrap.add_images(b0, counts, present, image_codes, pixels)
        if (b0 // step) % 100 == 99:
            logger.info("IoU tally: %d / %d images", b1, n_images)

    inter = (intersection.view(n_units, n_concepts) + image_intersection).cpu().numpy()
    pixels = labels.concepts["pixels"].to_numpy(np.int64)
    if category_restricted:
        active = active_by_category.cpu().numpy()[:, labels.concept_category]
    else:
        active = np.broadcast_to(active_total.cpu().numpy()[:, None], inter.shape)
    union = active + pixels[None, :] - inter
    return ConceptTally(
        intersection=inter,
        union=union,
        concepts=labels.concepts,
        category_restricted=category_restricted,
    )


def tally_table(tally: ConceptTally) -> pd.DataFrame:
    """The long ``(unit, concept, category, intersection, union, iou)`` table.

    One row per unit and concept with a non-empty union (every concept of the probe set has
    one), ordered by unit, then concept index (label number, then category order).
    """
    n_units, n_concepts = tally.intersection.shape
    unit = np.repeat(np.arange(n_units, dtype=np.int64), n_concepts)
    concept = np.tile(np.arange(n_concepts), n_units)
    union = tally.union.reshape(-1)
    keep = union > 0
    table = pd.DataFrame(
        {
            "unit": unit[keep],
            "concept": tally.concepts["concept"].to_numpy()[concept[keep]],
            "category": tally.concepts["category"].to_numpy()[concept[keep]],
            "intersection": tally.intersection.reshape(-1)[keep].astype(np.int64),
            "union": union[keep].astype(np.int64),
            "iou": tally.iou.reshape(-1)[keep],
        }
    )
    return table.astype({"concept": "string", "category": "string"})


def _check_inputs(
    activations: np.ndarray, thresholds: np.ndarray, labels: ProbeLabels
) -> tuple[int, int]:
    if activations.ndim != 4:
        raise ValueError(f"activations must be (N, K, h, w), got shape {activations.shape}")
    n_images, n_units = activations.shape[:2]
    if len(labels) != n_images:
        raise ValueError(
            f"the activations hold {n_images} images but the probe labels {len(labels)}; "
            "extract the activations and encode the labels from the same probe directory"
        )
    if np.shape(thresholds) != (n_units,):
        raise ValueError(
            f"expected one threshold per unit ({n_units}), got shape {np.shape(thresholds)}; "
            "were the thresholds computed for another layer?"
        )
    if len(labels.concepts) == 0:
        raise ValueError("the probe set has no labelled pixels or images, nothing to dissect")
    return n_images, n_units


class _LocalCombos:
    """The pixel combinations of a batch's segmentations renumbered per image: ``ids[i, y, x]``
    in ``0..width - 1`` indexes image ``i``'s own combinations, ``combo(i, id)`` the global
    combination. Computed once per batch, so each label map is read once."""

    def __init__(self, segments: torch.Tensor, n_combos: int) -> None:
        n = segments.shape[0]
        image = torch.arange(n, device=segments.device)[:, None, None]
        self.global_ids, inverse = torch.unique(image * n_combos + segments, return_inverse=True)
        self.pixels = torch.bincount(inverse.reshape(-1), minlength=len(self.global_ids))
        self.start = torch.searchsorted(
            self.global_ids, torch.arange(n, device=segments.device) * n_combos
        )
        self.ids = inverse - self.start[image]
        per_image = torch.bincount(self.global_ids // n_combos, minlength=n)
        self.width = int(per_image.max())
        self.n_combos = n_combos

    def combo(self, image: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        return self.global_ids[self.start[image] + local] % self.n_combos


def _active_combinations(
    maps: torch.Tensor,
    threshold: torch.Tensor,
    floor: torch.Tensor,
    local: _LocalCombos,
    geometry: WindowGeometry | None,
    pixels_per_step: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(image, unit, combo, count)``: ``count`` pixels of combination ``combo`` where
    ``upsample(maps[image, unit]) > threshold[unit]`` (each triple once per chunk).

    Only candidate maps (raw maximum above ``floor``) are looked at; with a ``geometry`` only
    their hot tiles are upsampled (:mod:`.windows`), else whole maps. At most
    ``pixels_per_step`` upsampled values are held at a time.
    """
    n_units = maps.shape[1]
    image, unit = (maps.amax(dim=(2, 3)) > floor[None, :]).nonzero(as_tuple=True)
    sh, sw = local.ids.shape[1:]
    if geometry is None:  # whole maps, one window each
        zero = torch.zeros_like(image)
        windows = (torch.arange(len(image), device=maps.device), zero, zero, None)
        size = (sh, sw)
    else:
        candidate = maps.view(-1, *geometry.source)[image * n_units + unit]
        windows = hot_cell_windows(candidate, floor[unit])
        size = geometry.window
    per_window = size[0] * size[1]
    offsets = (
        torch.arange(size[0], device=maps.device)[:, None] * sw
        + torch.arange(size[1], device=maps.device)[None, :]
    ).reshape(-1)
    step = max(1, pixels_per_step // per_window)
    width = local.width
    flat_ids = local.ids.reshape(-1)
    for w0 in range(0, len(windows[0]), step):
        candidate, y, x = (t[w0 : w0 + step] for t in windows[:3])
        i, k = image[candidate], unit[candidate]
        if geometry is None:
            values = upsample(maps[i, k][:, None], size)[:, 0]
            active = values > threshold[k][:, None, None]
            origin = i * (sh * sw)
        else:
            source = maps.view(-1, *geometry.source)[i * n_units + k]
            owned = windows[3][w0 : w0 + step]
            active = active_in_windows(source, y, x, owned, threshold[k], geometry)
            origin = i * (sh * sw) + geometry.window_rows[y] * sw + geometry.window_cols[x]
        # only the active pixels (a few per cent of a window) are looked up and counted
        pixel = active.reshape(-1).nonzero()[:, 0]
        window = pixel // per_window
        ids = flat_ids[origin[window] + offsets[pixel - window * per_window]]
        n = len(i)
        count = torch.bincount(window * width + ids, minlength=n * width).view(n, width)
        window, combo = count.nonzero(as_tuple=True)
        # windows of one map meet again in the caller's index_add, so no merge is needed here
        yield i[window], k[window], local.combo(i[window], combo), count[window, combo]


def _pixel_cells(
    unit: torch.Tensor, combo: torch.Tensor, combos: torch.Tensor, n_concepts: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The table cells ``k * J + j`` of the concepts of each ``(unit, combination)`` entry, one
    per (entry, concept); also returned: the entry each cell comes from."""
    entry = (combo > 0).nonzero(as_tuple=True)[0]
    codes = combos[combo[entry]]  # (n, width) codes j + 1, 0-padded
    flat = unit[entry, None] * n_concepts + codes - 1
    keep = codes > 0
    return entry[:, None].expand_as(codes)[keep], flat[keep]


def _label_pixels(
    local: _LocalCombos,
    combos: torch.Tensor,
    image_codes: torch.Tensor,
    n_concepts: int,
    size: tuple[int, int],
) -> torch.Tensor:
    """Labelled pixels of every concept in every image of a batch, ``(n, J)`` int64 (an
    image-level label covers the whole image), summing to ``concepts['pixels']`` over the set;
    from the pixel count of each (image, combination) of the batch's ``local`` combinations."""
    n = image_codes.shape[0]
    image, combo = local.global_ids // local.n_combos, local.global_ids % local.n_combos
    codes = combos[combo]  # (m, width) codes j + 1, 0-padded
    keep = codes > 0
    flat = (image[:, None] * n_concepts + codes - 1)[keep]
    count = local.pixels[:, None].expand_as(codes)[keep]
    pixels = torch.zeros(n * n_concepts, dtype=torch.int64, device=image_codes.device)
    pixels = pixels.index_add_(0, flat, count).view(n, n_concepts)
    image, slot = (image_codes > 0).nonzero(as_tuple=True)
    whole = torch.full((len(image),), size[0] * size[1], dtype=torch.int64, device=pixels.device)
    pixels.index_put_((image, image_codes[image, slot] - 1), whole, accumulate=True)
    return pixels


def _add_image_intersections(
    image_intersection: torch.Tensor, counts: torch.Tensor, image_codes: torch.Tensor
) -> None:
    """Image-level labels cover the whole image: add ``|M_ki|`` to each of image i's concepts."""
    image, slot = (image_codes > 0).nonzero(as_tuple=True)
    if image.numel() == 0:
        return
    concept = image_codes[image, slot] - 1
    image_intersection.index_add_(1, concept, counts[image].T.contiguous())
