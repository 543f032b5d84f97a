"""Config keys that are accepted but read by nothing: a value other than the default is an error.

The default tree carries some Detectron2 keys (detection, proposals, DeepLab's head, FPN,
deformable convolutions, repeat-factor sampling, ...) so that Detectron2 and original
MaskFormer / Mask2Former config files merge unchanged. Nothing in this project reads them, so a
config that sets one to another value than its default would be silently ignored:
:func:`check_unsupported_keys` refuses that, naming the key and why.
"""
from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Tuple

from .config import CfgNode, ConfigError

__all__ = ["UNSUPPORTED_KEYS", "UnsupportedKey", "check_unsupported_keys"]


class UnsupportedKey(NamedTuple):
    """Why a key is not read, and the values (besides the default) that mean the same here."""

    reason: str
    equivalent_values: Tuple[Any, ...] = ()


_DETECTION = "Detectron2's box and keypoint detection is not part of this project"
_PROPOSALS = "precomputed proposals (detection) are not supported"
_DEEPLAB_HEAD = "DeepLab's segmentation head is not implemented (only its ResNet backbone is)"
_FPN = "Detectron2's FPN backbone is not implemented (the pixel decoders are the FPNs here)"
_DEFORM = "deformable convolutions are not implemented"

#: ``{full key: UnsupportedKey}`` of the keys nothing reads.
UNSUPPORTED_KEYS: Dict[str, UnsupportedKey] = {
    # True (the video configs of the Mask2Former release set it) means what every model here does:
    # predict masks; Detectron2's switch of an R-CNN mask head has nothing else to switch
    "MODEL.MASK_ON": UnsupportedKey(_DETECTION, equivalent_values=(True,)),
    "MODEL.KEYPOINT_ON": UnsupportedKey(_DETECTION),
    "MODEL.LOAD_PROPOSALS": UnsupportedKey(_PROPOSALS),
    "TEST.KEYPOINT_OKS_SIGMAS": UnsupportedKey(_DETECTION),
    "DATASETS.PROPOSAL_FILES_TRAIN": UnsupportedKey(_PROPOSALS),
    "DATASETS.PROPOSAL_FILES_TEST": UnsupportedKey(_PROPOSALS),
    "DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TRAIN": UnsupportedKey(_PROPOSALS),
    "DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TEST": UnsupportedKey(_PROPOSALS),
    "MODEL.FPN.IN_FEATURES": UnsupportedKey(_FPN),
    "MODEL.FPN.OUT_CHANNELS": UnsupportedKey(_FPN),
    "MODEL.FPN.NORM": UnsupportedKey(_FPN),
    "MODEL.FPN.FUSE_TYPE": UnsupportedKey(_FPN),
    "MODEL.SEM_SEG_HEAD.LOSS_TYPE": UnsupportedKey(_DEEPLAB_HEAD),
    "MODEL.SEM_SEG_HEAD.PROJECT_FEATURES": UnsupportedKey(_DEEPLAB_HEAD),
    "MODEL.SEM_SEG_HEAD.PROJECT_CHANNELS": UnsupportedKey(_DEEPLAB_HEAD),
    "MODEL.SEM_SEG_HEAD.ASPP_CHANNELS": UnsupportedKey(_DEEPLAB_HEAD),
    "MODEL.SEM_SEG_HEAD.ASPP_DILATIONS": UnsupportedKey(_DEEPLAB_HEAD),
    "MODEL.SEM_SEG_HEAD.ASPP_DROPOUT": UnsupportedKey(_DEEPLAB_HEAD),
    "MODEL.SEM_SEG_HEAD.USE_DEPTHWISE_SEPARABLE_CONV": UnsupportedKey(_DEEPLAB_HEAD),
    "MODEL.RESNETS.DEFORM_MODULATED": UnsupportedKey(_DEFORM),
    "MODEL.RESNETS.DEFORM_NUM_GROUPS": UnsupportedKey(_DEFORM),
    "DATALOADER.REPEAT_THRESHOLD": UnsupportedKey(
        "repeat-factor sampling is not implemented (DATALOADER.SAMPLER_TRAIN: TrainingSampler only)"),
    "DATALOADER.REPEAT_SQRT": UnsupportedKey(
        "repeat-factor sampling is not implemented (DATALOADER.SAMPLER_TRAIN: TrainingSampler only)"),
    "SOLVER.NUM_DECAYS": UnsupportedKey("only Detectron2's WarmupStepWithFixedGammaLR reads it, which is not implemented"),
    "VIS_PERIOD": UnsupportedKey("training-time visualization of detection proposals is not implemented"),
    "GLOBAL.HACK": UnsupportedKey("Detectron2 reads it nowhere either"),
    "VERSION": UnsupportedKey("only version-2 config files (Detectron2's current format) are read; "
                              "Detectron2's upgrade of older formats is not implemented"),
    "INPUT.MASK_FORMAT": UnsupportedKey(
        "the training mappers always rasterize instance masks (polygons and RLE) to bitmasks", ("bitmask",)),
}


def _get(cfg: CfgNode, key: str) -> Tuple[bool, Any]:
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def check_unsupported_keys(cfg: CfgNode, defaults: CfgNode) -> None:
    """Refuse a config that sets a key of :data:`UNSUPPORTED_KEYS` to a value that changes something.

    Args:
        cfg: the merged config.
        defaults: the same tree with its defaults (``get_cfg()`` plus the model families' keys).

    Raises:
        ConfigError: one or more keys differ from their default (and from their equivalent values);
            the message names each key, its value and why it is not supported.
    """
    problems: List[str] = []
    for key, info in UNSUPPORTED_KEYS.items():
        present, value = _get(cfg, key)
        has_default, default = _get(defaults, key)
        if not present or not has_default:
            continue
        if _same(value, default) or any(_same(value, v) for v in info.equivalent_values):
            continue
        problems.append(f"{key} = {value!r} (default {default!r}): {info.reason}")
    if problems:
        raise ConfigError("These config keys are accepted for compatibility but nothing reads them, so the values "
                          "set would be ignored; remove them or set the defaults:\n  " + "\n  ".join(problems))
