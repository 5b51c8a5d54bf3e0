"""The Broden on-disk format (Bau et al., CVPR 2017): every fact about it, in one place.

The format, as written by NetDissect's ``joinseg.py`` and read by NetDissect-Lite's
``loader/data_loader.py``:

- ``index.csv``: ``image,split,ih,iw,sh,sw`` then one column per category (``color, object,
  part, material, scene, texture``). A category cell holds ``;``-separated entries, dominant
  first: a file name (relative to ``images/``) is a pixel-level label PNG, an integer is an
  image-level label; an empty cell means the category is not labelled in that image.
- Label PNGs hold the global label number of every pixel as ``R + 256 * G``.
- ``label.csv``: ``number,name,category,frequency,coverage,syns``, one row per label number
  >= 1 (0 means unlabelled and has no row); ``category`` reads like ``material(36);object(3)``
  (images per category, most frequent first); ``coverage`` is in units of whole images.
- ``category.csv``: ``name,first,last,count,frequency``.
- ``c_<category>.csv``: ``code,number,name,frequency,coverage``, a dense per-category coding.

This module holds the column lists, the label codec and the format's error; the reader
(:mod:`.reader`), the writer (:mod:`.writer`) and the checks (:mod:`.checks`) use them. Nothing
in :mod:`prunedissect.data.broden` imports torch.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

#: The columns of ``index.csv`` in Broden's order: image metadata, then categories.
META_COLUMNS = ("image", "split", "ih", "iw", "sh", "sw")
CATEGORY_COLUMNS = ("color", "object", "part", "material", "scene", "texture")
INDEX_COLUMNS = META_COLUMNS + CATEGORY_COLUMNS
LABEL_COLUMNS = ("number", "name", "category", "frequency", "coverage")
"""The columns of ``label.csv`` a reader needs."""
LABEL_FILE_COLUMNS = LABEL_COLUMNS + ("syns",)
"""The columns of ``label.csv`` as written (``syns``: synonyms, empty here)."""
CODE_COLUMNS = ("code", "number", "name", "frequency", "coverage")
"""The columns of every ``c_<category>.csv``."""
CATEGORY_FILE_COLUMNS = ("name", "first", "last", "count", "frequency")
"""The columns of ``category.csv``."""


class BrodenFormatError(ValueError):
    """A Broden directory is missing a file or holds a malformed one."""



def decode_labels(rgb: np.ndarray) -> np.ndarray:
    """Broden label numbers from an H x W x 3 label image: R + 256 G, as int32."""
    return rgb[..., 0].astype(np.int32) + 256 * rgb[..., 1].astype(np.int32)


def encode_labels(labels: np.ndarray, blue: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`decode_labels`: H x W x 3 uint8 with R = n mod 256, G = n div 256
    (and ``blue``, which Broden's own label PNGs use for instance ids, when given)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"a label map must be 2-D (h, w), got shape {labels.shape}")
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= 256 * 256:
        raise ValueError("label numbers must lie in 0..65535 to fit R + 256 * G")
    rgb = np.zeros((*labels.shape, 3), dtype=np.uint8)
    rgb[..., 0] = labels % 256
    rgb[..., 1] = labels // 256
    if blue is not None:
        rgb[..., 2] = blue
    return rgb


def decode_label_png(path: str | os.PathLike) -> np.ndarray:
    """Global label numbers ``R + 256 * G`` of a Broden label PNG, as int32 ``(h, w)``."""
    with Image.open(path) as image:
        return decode_labels(np.asarray(image.convert("RGB")))


def encode_label_png(labels: np.ndarray) -> Image.Image:
    """An RGB PIL image holding ``labels`` (non-negative ints < 65536) as ``R + 256 * G``."""
    return Image.fromarray(encode_labels(labels), mode="RGB")
