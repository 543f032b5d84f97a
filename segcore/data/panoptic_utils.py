"""Panoptic segment ids <-> COCO panoptic PNG colours (panopticapi's ``rgb2id`` / ``id2rgb``).

COCO panoptic annotations store each segment id in an RGB PNG as
``id = R + 256 * G + 256 ** 2 * B``; id 0 is unlabeled (VOID). The functions live in
:mod:`segcore.data.datasets.panoptic_ids`; this module is the short import path for them.
"""
from .datasets.panoptic_ids import id2rgb, rgb2id

__all__ = ["id2rgb", "rgb2id"]
