"""The base of the segmentation heads built around a pixel decoder (MaskFormer Sec. 3.3, Fig. 2)."""
from __future__ import annotations

import logging
from typing import Dict, List

from torch import nn

from segcore.layers import ShapeSpec

from ...solver import mask_former_param_groups_from_config
from .pixel_decoder import build_pixel_decoder

__all__ = ["PixelDecoderHead"]


class PixelDecoderHead(nn.Module):
    """What :class:`MaskFormerHead` and the per-pixel baseline heads share: the pixel decoder,
    the head's common settings, the upgrade of old checkpoints and the optimizer policy.

    Args:
        input_shape: {name: ShapeSpec} of the backbone features the head uses (sorted by stride
            into ``in_features``).
        num_classes: K (without "no object").
        pixel_decoder: a module with ``forward_features(features) -> PixelDecoderOutput``.
        loss_weight: multiplier of the head's own loss (per-pixel baselines; kept for config
            compatibility by the mask-classification heads, whose losses live in the criterion).
        ignore_value: label of pixels that do not count in the losses.

    Attributes:
        common_stride: 4, the stride (pixels) of the pixel decoder's output (res2); fixed in
            MaskFormer (``SEM_SEG_HEAD.COMMON_STRIDE`` is not read by these heads).

    State dict: version 2 keeps the pixel decoder under ``pixel_decoder.``; a version-1 (early
    MaskFormer) checkpoint with those weights directly under the head is converted on load.
    """

    _version = 2
    common_stride = 4

    def __init__(self, input_shape: Dict[str, ShapeSpec], *, num_classes: int, pixel_decoder: nn.Module,
                 loss_weight: float = 1.0, ignore_value: int = -1):
        super().__init__()
        self.in_features: List[str] = [k for k, _ in sorted(input_shape.items(), key=lambda x: x[1].stride)]
        self.ignore_value = ignore_value
        self.loss_weight = loss_weight
        self.num_classes = num_classes
        self.pixel_decoder = pixel_decoder

    @classmethod
    def pixel_decoder_head_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        """The constructor arguments of this base, from ``MODEL.SEM_SEG_HEAD.*`` (IN_FEATURES,
        IGNORE_VALUE, NUM_CLASSES, LOSS_WEIGHT) and the pixel decoder of ``PIXEL_DECODER_NAME``."""
        head = cfg.MODEL.SEM_SEG_HEAD
        return {
            "input_shape": {k: v for k, v in input_shape.items() if k in head.IN_FEATURES},
            "ignore_value": head.IGNORE_VALUE,
            "num_classes": head.NUM_CLASSES,
            "pixel_decoder": build_pixel_decoder(cfg, input_shape),
            "loss_weight": head.LOSS_WEIGHT,
        }

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        version = local_metadata.get("version", None)
        if version is None or version < 2:
            moved = False
            for k in list(state_dict.keys()):
                if k.startswith(prefix) and not k.startswith(prefix + "predictor") \
                        and not k.startswith(prefix + "pixel_decoder"):
                    state_dict[prefix + "pixel_decoder." + k[len(prefix):]] = state_dict.pop(k)
                    moved = True
            if moved:
                logging.getLogger(__name__).warning(
                    f"Weight format of {type(self).__name__} has changed; converting the checkpoint's "
                    f"'{prefix}*' pixel-decoder weights to '{prefix}pixel_decoder.*'")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def model_param_groups(self, cfg, model: nn.Module) -> List[dict]:
        """The optimizer parameter groups of a model using this head (MaskFormer's policy, as the
        original ``train_net.py`` applies to every model it trains, per-pixel baselines included)."""
        return mask_former_param_groups_from_config(cfg, model)
