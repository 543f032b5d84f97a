"""MaskFormer config keys (the original ``add_mask_former_config``), names and defaults unchanged.

The keys are added with :func:`segcore.config.add_config_defaults`: only the ones a config does
not have yet, so adding them twice changes nothing and a later family (Mask2Former, SeMask) keeps
its own keys. Engine keys that the engine already defines keep the engine's default (e.g.
``SOLVER.OPTIMIZER`` stays Detectron2's "SGD", ``INPUT.DATASET_MAPPER_NAME`` the engine's mapper):
the original MaskFormer and Mask2Former config files set those explicitly.
"""
from segcore.config import CfgNode as CN
from segcore.config import ModelFamily, add_config_defaults

__all__ = ["FAMILY", "MASK_FORMER_DEFAULTS", "SWIN_DEFAULTS", "add_mask_former_config", "add_swin_config"]

#: MaskFormer's keys and defaults (Cheng et al., NeurIPS 2021; the original ``mask_former/config.py``),
#: plus the keys that the shared mask-classification code reads (decoder name, class weight, the
#: semantic / instance test switches), with the defaults that keep MaskFormer's behaviour.
MASK_FORMER_DEFAULTS = {
    # data: the training mapper, SSD colour jitter, the crop's category-area constraint, and the
    # fixed size (pixels) the MaskFormer mappers pad to (-1: no padding)
    "INPUT.DATASET_MAPPER_NAME": "mask_former_semantic",
    "INPUT.COLOR_AUG_SSD": False,
    "INPUT.CROP.SINGLE_CATEGORY_MAX_AREA": 1.0,
    "INPUT.SIZE_DIVISIBILITY": -1,
    # solver: AdamW, lr x BACKBONE_MULTIPLIER in the backbone, weight decay of nn.Embedding
    "SOLVER.OPTIMIZER": "ADAMW",
    "SOLVER.BACKBONE_MULTIPLIER": 0.1,
    "SOLVER.WEIGHT_DECAY_EMBED": 0.0,
    # loss (Sec. 3.2): deep supervision, the no-object weight of the cross-entropy, and the class,
    # dice and mask (focal for MaskFormer) weights of the loss and of the matching cost
    "MODEL.MASK_FORMER.DEEP_SUPERVISION": True,
    "MODEL.MASK_FORMER.NO_OBJECT_WEIGHT": 0.1,
    "MODEL.MASK_FORMER.CLASS_WEIGHT": 1.0,
    "MODEL.MASK_FORMER.DICE_WEIGHT": 1.0,
    "MODEL.MASK_FORMER.MASK_WEIGHT": 20.0,
    # transformer decoder (Sec. 3.3): chosen from TRANSFORMER_DECODER_REGISTRY by name
    "MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME": "StandardTransformerDecoder",
    "MODEL.MASK_FORMER.NHEADS": 8,
    "MODEL.MASK_FORMER.DROPOUT": 0.1,
    "MODEL.MASK_FORMER.DIM_FEEDFORWARD": 2048,
    "MODEL.MASK_FORMER.ENC_LAYERS": 0,
    "MODEL.MASK_FORMER.DEC_LAYERS": 6,
    "MODEL.MASK_FORMER.PRE_NORM": False,
    "MODEL.MASK_FORMER.HIDDEN_DIM": 256,
    "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES": 100,
    # the input of the transformer decoder: a backbone feature ("res5"), "transformer_encoder",
    # "pixel_embedding" or "multi_scale_pixel_decoder"
    "MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE": "res5",
    "MODEL.MASK_FORMER.ENFORCE_INPUT_PROJ": False,
    # inference (Sec. 3.4): which outputs the model returns, and the panoptic thresholds
    "MODEL.MASK_FORMER.TEST.SEMANTIC_ON": True,
    "MODEL.MASK_FORMER.TEST.INSTANCE_ON": False,
    "MODEL.MASK_FORMER.TEST.PANOPTIC_ON": False,
    "MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD": 0.0,
    "MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD": 0.0,
    "MODEL.MASK_FORMER.TEST.SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE": False,
    # Older releases of the original configs name the semantic inference; only the paper's
    # "probabilistic" marginalization (Sec. 3.4) exists, any other value is an error.
    "MODEL.MASK_FORMER.TEST.SEMANTIC_INFERENCE_METHOD": "probabilistic",
    # pad the batch to a multiple of this (pixels); < 0 uses the backbone's size_divisibility
    "MODEL.MASK_FORMER.SIZE_DIVISIBILITY": 32,
    # pixel decoder (Sec. 3.3): width of the per-pixel embeddings, encoder layers of
    # TransformerEncoderPixelDecoder, and the decoder's registered name
    "MODEL.SEM_SEG_HEAD.MASK_DIM": 256,
    "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS": 0,
    "MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME": "BasePixelDecoder",
}

#: ``MODEL.SWIN.*``: the Swin Transformer backbone's keys, as in the original projects.
SWIN_DEFAULTS = {
    "MODEL.SWIN.PRETRAIN_IMG_SIZE": 224,
    "MODEL.SWIN.PATCH_SIZE": 4,
    "MODEL.SWIN.EMBED_DIM": 96,
    "MODEL.SWIN.DEPTHS": [2, 2, 6, 2],
    "MODEL.SWIN.NUM_HEADS": [3, 6, 12, 24],
    "MODEL.SWIN.WINDOW_SIZE": 7,
    "MODEL.SWIN.MLP_RATIO": 4.0,
    "MODEL.SWIN.QKV_BIAS": True,
    "MODEL.SWIN.QK_SCALE": None,
    "MODEL.SWIN.DROP_RATE": 0.0,
    "MODEL.SWIN.ATTN_DROP_RATE": 0.0,
    "MODEL.SWIN.DROP_PATH_RATE": 0.3,
    "MODEL.SWIN.APE": False,
    "MODEL.SWIN.PATCH_NORM": True,
    "MODEL.SWIN.OUT_FEATURES": ["res2", "res3", "res4", "res5"],
    "MODEL.SWIN.USE_CHECKPOINT": False,
}


def add_mask_former_config(cfg: CN) -> None:
    """Add the keys of MaskFormer (:data:`MASK_FORMER_DEFAULTS`) and Swin (:data:`SWIN_DEFAULTS`)
    that ``cfg`` does not have yet, in place (idempotent; existing keys keep their values)."""
    add_config_defaults(cfg, MASK_FORMER_DEFAULTS)
    add_swin_config(cfg)


def add_swin_config(cfg: CN) -> None:
    """Add the ``MODEL.SWIN.*`` keys that ``cfg`` does not have yet (in place, idempotent)."""
    add_config_defaults(cfg, SWIN_DEFAULTS)


#: The entry point of the family (``setup.py``: ``segcore.model_families``).
FAMILY = ModelFamily(name="mask_former", add_config=add_mask_former_config)
