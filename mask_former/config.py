"""MaskFormer config keys (the original ``add_mask_former_config``), names and defaults unchanged."""
from segcore.config import CfgNode as CN

__all__ = ["add_mask_former_config", "add_swin_config"]


def add_mask_former_config(cfg: CN) -> None:
    """Add the keys of MaskFormer (Cheng et al., NeurIPS 2021) to ``cfg`` in place.

    Keys (defaults as in the original ``mask_former/config.py``):
      MODEL.MASK_FORMER.*: loss weights (Sec. 3.2: DICE_WEIGHT, MASK_WEIGHT (focal), NO_OBJECT_WEIGHT),
        transformer decoder size (HIDDEN_DIM, NHEADS, DIM_FEEDFORWARD, DEC_LAYERS, ENC_LAYERS,
        PRE_NORM, DROPOUT), NUM_OBJECT_QUERIES, DEEP_SUPERVISION, TRANSFORMER_IN_FEATURE,
        SIZE_DIVISIBILITY (pixels; the model pads its input batch to a multiple of it).
      MODEL.MASK_FORMER.TEST.*: PANOPTIC_ON, OBJECT_MASK_THRESHOLD, OVERLAP_THRESHOLD,
        SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE.
      MODEL.SEM_SEG_HEAD.MASK_DIM, TRANSFORMER_ENC_LAYERS, PIXEL_DECODER_NAME; MODEL.SWIN.*.
    """
    cfg.INPUT.DATASET_MAPPER_NAME = "mask_former_semantic"
    cfg.INPUT.COLOR_AUG_SSD = False
    cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA = 1.0
    cfg.INPUT.SIZE_DIVISIBILITY = -1

    cfg.SOLVER.WEIGHT_DECAY_EMBED = 0.0
    cfg.SOLVER.OPTIMIZER = "ADAMW"
    cfg.SOLVER.BACKBONE_MULTIPLIER = 0.1

    mf = cfg.MODEL.MASK_FORMER = CN()
    mf.DEEP_SUPERVISION = True
    mf.NO_OBJECT_WEIGHT = 0.1
    mf.DICE_WEIGHT = 1.0
    mf.MASK_WEIGHT = 20.0
    mf.NHEADS = 8
    mf.DROPOUT = 0.1
    mf.DIM_FEEDFORWARD = 2048
    mf.ENC_LAYERS = 0
    mf.DEC_LAYERS = 6
    mf.PRE_NORM = False
    mf.HIDDEN_DIM = 256
    mf.NUM_OBJECT_QUERIES = 100
    mf.TRANSFORMER_IN_FEATURE = "res5"
    mf.ENFORCE_INPUT_PROJ = False
    mf.TEST = CN()
    mf.TEST.PANOPTIC_ON = False
    mf.TEST.OBJECT_MASK_THRESHOLD = 0.0
    mf.TEST.OVERLAP_THRESHOLD = 0.0
    mf.TEST.SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE = False
    # Older releases of the original configs name the semantic inference; only the paper's
    # "probabilistic" marginalization (Sec. 3.4) exists, any other value is an error.
    mf.TEST.SEMANTIC_INFERENCE_METHOD = "probabilistic"
    mf.SIZE_DIVISIBILITY = 32

    cfg.MODEL.SEM_SEG_HEAD.MASK_DIM = 256
    cfg.MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS = 0
    cfg.MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME = "BasePixelDecoder"

    add_swin_config(cfg)


def add_swin_config(cfg: CN) -> None:
    """Add ``MODEL.SWIN.*`` (Swin Transformer backbone keys, as in the original projects)."""
    if "SWIN" in cfg.MODEL:
        return
    s = cfg.MODEL.SWIN = CN()
    s.PRETRAIN_IMG_SIZE = 224
    s.PATCH_SIZE = 4
    s.EMBED_DIM = 96
    s.DEPTHS = [2, 2, 6, 2]
    s.NUM_HEADS = [3, 6, 12, 24]
    s.WINDOW_SIZE = 7
    s.MLP_RATIO = 4.0
    s.QKV_BIAS = True
    s.QK_SCALE = None
    s.DROP_RATE = 0.0
    s.ATTN_DROP_RATE = 0.0
    s.DROP_PATH_RATE = 0.3
    s.APE = False
    s.PATCH_NORM = True
    s.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    s.USE_CHECKPOINT = False
