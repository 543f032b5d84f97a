"""The released SeMask Swin-L configs (the parity references were measured on them) and tiny models
made from them with small widths and depths, for the tests."""
import os

from segcore.engine import setup_cfg
from tests.paths import CONFIGS

#: the released configs the tiny models start from, by decoder family
CONFIGS_BY_FAMILY = {
    "maskformer": "ade20k-150/semask_swin/maskformer_semask_swin_large_IN21k_384_bs16_160k_res640.yaml",
    "mask2former": ("ade20k/semantic-segmentation/semask_swin/"
                    "maskformer2_semask_swin_large_IN21k_384_bs16_160k_res640.yaml"),
}
NUM_CLASSES = 6
TINY = ["MODEL.SWIN.EMBED_DIM", "16", "MODEL.SWIN.DEPTHS", "[2, 2, 2, 2]", "MODEL.SWIN.NUM_HEADS", "[1, 2, 2, 4]",
        "MODEL.SWIN.WINDOW_SIZE", "4", "MODEL.SWIN.SEM_WINDOW_SIZE", "4", "MODEL.SWIN.PRETRAIN_IMG_SIZE", "64",
        "MODEL.SWIN.DROP_PATH_RATE", "0.0", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", str(NUM_CLASSES),
        "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32",
        "MODEL.MASK_FORMER.HIDDEN_DIM", "32", "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "4",
        "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "32", "MODEL.MASK_FORMER.NHEADS", "2", "MODEL.MASK_FORMER.DROPOUT", "0.0",
        "MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu"]
TINY_BY_FAMILY = {
    "maskformer": ["MODEL.MASK_FORMER.DEC_LAYERS", "2"],
    "mask2former": ["MODEL.MASK_FORMER.DEC_LAYERS", "4", "MODEL.MASK_FORMER.TRAIN_NUM_POINTS", "64",
                    "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1",
                    "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS", "2",
                    "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_DIM_FEEDFORWARD", "32"],
}


def tiny_cfg(family: str, *overrides: str):
    """The tiny config of ``family`` ("maskformer" or "mask2former"), with ``overrides`` (KEY VALUE ...)."""
    path = os.path.join(CONFIGS, *CONFIGS_BY_FAMILY[family].split("/"))
    return setup_cfg(path, [*TINY, *TINY_BY_FAMILY[family], *overrides])
