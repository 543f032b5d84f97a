"""A tiny Swin MaskFormer and an official Swin ImageNet checkpoint's entries for its backbone
(shared by ``tests/mask_former/convert`` and the command-line test ``tests/tools/test_converters.py``)."""
import os
import re

import torch

from segcore.modeling import build_model
from tests.paths import CONFIGS

SWIN_TINY = [
    "MODEL.BACKBONE.NAME", "D2SwinTransformer", "MODEL.SWIN.EMBED_DIM", "8", "MODEL.SWIN.DEPTHS", "[2, 2, 2, 2]",
    "MODEL.SWIN.NUM_HEADS", "[1, 1, 2, 2]", "MODEL.SWIN.WINDOW_SIZE", "7", "MODEL.SWIN.DROP_PATH_RATE", "0.0",
    "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "16", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "3",
    "MODEL.MASK_FORMER.HIDDEN_DIM", "16", "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "4", "MODEL.MASK_FORMER.NHEADS", "2",
    "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "32", "MODEL.MASK_FORMER.DEC_LAYERS", "1", "MODEL.WEIGHTS", "",
]
#: the final LayerNorm's width of SWIN_TINY: EMBED_DIM * 2 ** 3
FINAL_DIM = 8 * 8


def tiny_swin_maskformer(cfg):
    """A tiny MaskFormer with a Swin backbone (SWIN_TINY) from the MaskFormer config ``cfg``."""
    cfg.merge_from_file(os.path.join(CONFIGS, "ade20k-150", "maskformer_R50_bs16_160k.yaml"))
    cfg.merge_from_list(SWIN_TINY)
    return build_model(cfg)


def swin_imagenet_state_dict(model_sd):
    """An official Swin classifier's entries for the backbone of ``model_sd``: its names, a final
    ``norm`` and a ``head`` instead of Detectron2's per-stage norms ``norm0..3``, and the shifted
    blocks' ``attn_mask`` buffer; random values (the index buffers exact)."""
    backbone_keys = [k[len("backbone."):] for k in model_sd if k.startswith("backbone.")]
    keys = [k for k in backbone_keys if not re.match(r"^norm\d\.", k)]
    keys += ["layers.0.blocks.1.attn_mask", "norm.weight", "norm.bias", "head.weight", "head.bias"]
    g = torch.Generator().manual_seed(0)
    state = {}
    for k in keys:
        if k in ("norm.weight", "norm.bias", "head.bias"):
            shape = (FINAL_DIM,) if k.startswith("norm") else (11,)
        elif k == "head.weight":
            shape = (11, FINAL_DIM)
        elif k.endswith("attn_mask"):  # a buffer of the shifted blocks in the classification code
            shape = (64, 49, 49)
        else:
            shape = tuple(model_sd["backbone." + k].shape)
        ref = model_sd.get("backbone." + k)
        state[k] = ref.clone() if ref is not None and not ref.is_floating_point() else torch.randn(shape, generator=g)
    return state
