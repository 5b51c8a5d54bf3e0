"""Probe-image bootstrap of the IoU tally: how much a dissection result depends on the probe
images that happened to be drawn.

Every count of the tally (:mod:`.iou`) is a sum over probe images, so resampling the images
with replacement needs no second forward pass: replicate ``b`` gives image ``i`` the integer
weight ``w_bi`` (how often ``i`` was drawn among ``N`` draws, the nonparametric bootstrap), and
its intersections, unit areas and label areas are the weighted sums::

    intersection_b[k, j] = sum_i w_bi |M_ki & L_ji|     (and likewise |M_ki|, |L_ji|)

accumulated in the tally's own pass over the images (:class:`BootstrapAccumulator`, handed to
:func:`.iou.tally_iou`). Each replicate then labels every unit exactly as
:func:`.labels.label_units` labels the full sample (highest IoU, first maximum on ties,
interpretable when IoU > the threshold).

The weights depend only on ``(seed, replicates, N)`` (:func:`image_weights`), never on the
network: every checkpoint, layer and trial of a study is resampled with the same images, so
replicate ``b`` of level 0 and replicate ``b`` of level n form a pair, and differences between
checkpoints get paired intervals. Counts are exact integers.

Memory: the intersections of all replicates, ``K x J x B`` int32 (4 bytes each): 200 replicates
x 64 units x ~100 concepts = 5 MB on the default study, 200 x 2,048 x 1,322 = 2.2 GB for
ResNet-50 layer4 on Broden; plus ``B x K x (categories + 1)`` and ``B x J`` int64 areas. None of
it grows with the probe set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .labels import best_concepts, iou_of

_INT32_MAX = np.iinfo(np.int32).max


def image_weights(n_images: int, *, replicates: int, seed: int) -> np.ndarray:
    """Bootstrap weights ``(replicates, n_images)`` int32: row ``b`` counts how often each image
    was drawn among ``n_images`` draws with replacement (each row sums to ``n_images``).

    Integer draws from numpy's PCG64 (bit operations only), so the weights are the same on
    every host.
    """
    if replicates < 1 or n_images < 1:
        raise ValueError(f"need replicates >= 1 and images >= 1, got {replicates}, {n_images}")
    rng = np.random.Generator(np.random.PCG64(seed))
    draws = rng.integers(0, n_images, size=(replicates, n_images), dtype=np.int64)
    draws += np.arange(replicates, dtype=np.int64)[:, None] * n_images
    counts = np.bincount(draws.ravel(), minlength=replicates * n_images)
    return counts.reshape(replicates, n_images).astype(np.int32)


class BootstrapAccumulator:
    """The tally's sums under every replicate's image weights (see the module docstring).

    :func:`.iou.tally_iou` calls :meth:`add_pixels` with the labelled active pixels of each
    chunk and :meth:`add_images` once per batch; :meth:`labels` then names every unit in every
    replicate.
    """

    def __init__(
        self,
        weights: np.ndarray,
        *,
        n_units: int,
        concept_category: np.ndarray,
        n_categories: int,
        device: torch.device | str = "cpu",
    ) -> None:
        device = torch.device(device)
        # image-major (N, B): one image's weights of every replicate are contiguous
        self._by_image = torch.as_tensor(
            np.ascontiguousarray(np.asarray(weights, dtype=np.int64).T), device=device
        )
        self.n_units = n_units
        self.concept_category = np.asarray(concept_category, dtype=np.int64)
        n_rep, n_concepts = self._by_image.shape[1], len(self.concept_category)
        self.n_concepts = n_concepts
        # cell-major (K * J, B): a cell's replicates are one contiguous row for index_add_
        self.intersection = torch.zeros(
            (n_units * n_concepts, n_rep), dtype=torch.int32, device=device
        )
        self.active_by_category = torch.zeros(
            (n_rep, n_units, n_categories), dtype=torch.int64, device=device
        )
        self.active_total = torch.zeros((n_rep, n_units), dtype=torch.int64, device=device)
        self.pixels = torch.zeros((n_rep, n_concepts), dtype=torch.int64, device=device)

    @property
    def replicates(self) -> int:
        return int(self._by_image.shape[1])

    def add_pixels(
        self, image: torch.Tensor, flat: torch.Tensor, count: torch.Tensor | None = None
    ) -> None:
        """Labelled active pixels: entry ``e`` is ``count[e]`` pixels (1 without ``count``) of
        probe image ``image[e]`` (global index) in table cell ``flat[e] = unit * J + concept``.
        Entries of one image and cell are summed first, so the weighted add touches each
        (image, cell) once."""
        if flat.numel() == 0:
            return
        cells = self.n_units * self.n_concepts
        if count is None:
            key, count = torch.unique(image * cells + flat, return_counts=True)
        else:
            key, inverse = torch.unique(image * cells + flat, return_inverse=True)
            count = torch.zeros(len(key), dtype=torch.int64, device=key.device).index_add_(
                0, inverse, count.to(torch.int64)
            )
        weighted = (self._by_image[key // cells] * count[:, None]).to(torch.int32)
        self.intersection.index_add_(0, key % cells, weighted)

    def add_images(
        self,
        first: int,
        counts: torch.Tensor,
        present: torch.Tensor,
        image_codes: torch.Tensor,
        label_pixels: torch.Tensor,
    ) -> None:
        """A batch of images ``first, first + 1, ...``: active pixels ``counts`` ``(n, K)``,
        labelled categories ``present`` ``(n, C)``, image-level concept codes ``(n, width)``
        (``j + 1``, 0-padded) and labelled pixels per concept ``label_pixels`` ``(n, J)``."""
        n = counts.shape[0]
        w = self._by_image[first : first + n].T  # (B, n)
        self.active_total += w @ counts
        by_category = counts[:, :, None] * present[:, None, :].to(torch.int64)
        self.active_by_category += (w @ by_category.reshape(n, -1)).view(
            self.active_by_category.shape
        )
        self.pixels += w @ label_pixels
        image, slot = (image_codes > 0).nonzero(as_tuple=True)
        if image.numel():  # an image-level concept j of image i meets all |M_ki| pixels
            concept = (image_codes[image, slot] - 1).to(torch.int64)
            units = torch.arange(self.n_units, device=counts.device)
            flat = (units[None, :] * self.n_concepts + concept[:, None]).reshape(-1)
            by_image = self._by_image[first + image]  # (m, B)
            weighted = (counts[image][:, :, None] * by_image[:, None, :]).reshape(len(flat), -1)
            self.intersection.index_add_(0, flat, weighted.to(torch.int32))

    def counts(self, b: int, *, category_restricted: bool) -> tuple[np.ndarray, np.ndarray]:
        """Replicate ``b``'s ``(intersection, union)``, each ``(K, J)`` int64: the tally of the
        probe set in which image ``i`` occurs ``w_bi`` times."""
        if int(self.active_total.max()) > _INT32_MAX:  # bounds every intersection entry
            raise OverflowError(
                "bootstrap intersections overflow int32: a unit has more than 2**31 weighted "
                "active pixels; dissect fewer probe images per job"
            )
        inter = self.intersection[:, b].reshape(self.n_units, self.n_concepts).cpu().numpy()
        if category_restricted:
            active = self.active_by_category[b].cpu().numpy()[:, self.concept_category]
        else:
            active = self.active_total[b].cpu().numpy()[:, None]
        inter = inter.astype(np.int64)
        return inter, active + self.pixels[b].cpu().numpy()[None, :] - inter

    def labels(self, *, category_restricted: bool, iou_threshold: float) -> tuple[np.ndarray, ...]:
        """Every replicate's labels: ``concept`` (J index, -1 when the best IoU is 0), ``iou``
        and ``interpretable``, each ``(B, K)``."""
        shape = (self.replicates, self.n_units)
        concept = np.full(shape, -1, dtype=np.int64)
        best = np.zeros(shape, dtype=np.float64)
        for b in range(self.replicates):
            inter, union = self.counts(b, category_restricted=category_restricted)
            concept[b], best[b] = best_concepts(iou_of(inter, union))  # as label_units
        return concept, best, best > iou_threshold


def replicate_table(
    concept: np.ndarray, iou: np.ndarray, interpretable: np.ndarray, concepts: pd.DataFrame
) -> pd.DataFrame:
    """The ``(replicate, unit, concept, category, iou)`` rows of the units interpretable in each
    replicate (what interval estimates of counts need), sorted by replicate and unit."""
    replicate, unit = np.nonzero(interpretable)
    j = concept[replicate, unit]
    return pd.DataFrame(
        {
            "replicate": replicate.astype(np.int64),
            "unit": unit.astype(np.int64),
            "concept": pd.array(concepts["concept"].to_numpy(dtype=object)[j], dtype="string"),
            "category": pd.array(concepts["category"].to_numpy(dtype=object)[j], dtype="string"),
            "iou": iou[replicate, unit],
        }
    )


def unit_stability(
    concept: np.ndarray, interpretable: np.ndarray, full_concept: np.ndarray
) -> pd.DataFrame:
    """Per unit: the fraction of replicates in which it is interpretable, and in which its
    label is its full-sample label ``full_concept`` (J index, -1 for none; NaN when the unit has
    no full-sample label)."""
    same = (concept == np.asarray(full_concept)[None, :]).mean(axis=0)
    return pd.DataFrame(
        {
            "unit": np.arange(concept.shape[1], dtype=np.int64),
            "interpretable_fraction": interpretable.mean(axis=0),
            "same_concept_fraction": np.where(np.asarray(full_concept) >= 0, same, np.nan),
        }
    )
