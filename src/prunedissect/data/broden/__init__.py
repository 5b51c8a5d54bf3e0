"""Probe sets in the Broden on-disk format (Bau et al., CVPR 2017), without torch.

One reader serves the generated concept world and the real ``broden1_224``/``broden1_227``.
:mod:`.format` holds every fact about the format (columns, the ``R + 256 * G`` label codec);
:mod:`.reader` reads a directory (:class:`Broden`), :mod:`.writer` writes one
(:class:`BrodenWriter`), :mod:`.checks` checks its structure from the CSV files. The probe
images as a torch dataset are :class:`prunedissect.dissection.pipeline.BrodenImages`.
"""

from prunedissect.data.broden.checks import check_broden_dir, structure_errors
from prunedissect.data.broden.format import (
    CATEGORY_COLUMNS,
    CATEGORY_FILE_COLUMNS,
    CODE_COLUMNS,
    INDEX_COLUMNS,
    LABEL_COLUMNS,
    LABEL_FILE_COLUMNS,
    META_COLUMNS,
    BrodenFormatError,
    decode_label_png,
    decode_labels,
    encode_label_png,
    encode_labels,
)
from prunedissect.data.broden.reader import Broden, CategoryLabels
from prunedissect.data.broden.writer import BrodenWriter, LabelSpec, WrittenImage, write_image_files

__all__ = [
    "CATEGORY_COLUMNS",
    "CATEGORY_FILE_COLUMNS",
    "CODE_COLUMNS",
    "INDEX_COLUMNS",
    "LABEL_COLUMNS",
    "LABEL_FILE_COLUMNS",
    "META_COLUMNS",
    "Broden",
    "BrodenFormatError",
    "BrodenWriter",
    "CategoryLabels",
    "LabelSpec",
    "WrittenImage",
    "check_broden_dir",
    "decode_label_png",
    "decode_labels",
    "encode_label_png",
    "encode_labels",
    "structure_errors",
    "write_image_files",
]
