"""SeMask config keys (the original SeMask-MaskFormer / SeMask-Mask2Former ``add_*_config``).

SeMask extends Mask2Former (and so MaskFormer): :func:`add_semask_config` adds their keys first,
then SeMask's, each only when missing (:func:`segcore.config.add_config_defaults`).
"""
from segcore.config import CfgNode as CN
from segcore.config import ModelFamily, add_config_defaults

from mask2former.config import add_maskformer2_config

__all__ = ["FAMILY", "SEMASK_DEFAULTS", "add_semask_config"]

#: The keys SeMask adds (Jain et al., "SeMask: Semantically Masked Transformers for Semantic
#: Segmentation", 2021), with the defaults of the original SeMask-MaskFormer and SeMask-Mask2Former
#: ``add_mask_former_config`` / ``add_maskformer2_config`` (both add the same three keys), and
#: SeMask-FPN's OHEM setting (an mmsegmentation config value in the release).
SEMASK_DEFAULTS: dict = {
    # weight of the cross-entropy on the semantic decoder's output (the "semantic prior" loss,
    # Sec. 3), next to the mask-classification losses
    "MODEL.MASK_FORMER.CATE_WEIGHT": 0.4,
    # the Semantic Layer of every Swin stage (Sec. 3): its window side (tokens) where it attends
    # within windows, and its number of SeMask attention blocks (N_S)
    "MODEL.SWIN.SEM_WINDOW_SIZE": 7,
    "MODEL.SWIN.NUM_SEM_BLOCKS": 1,
    # SeMask-FPN (BranchFPNHead): with a value > 0, the segmentation loss counts only the hardest
    # OHEM_MIN_KEPT labeled pixels per image (the release's OHEMPixelSampler, 100000 for SeMask-L
    # FPN on ADE20K); 0 counts every labeled pixel
    "MODEL.SEM_SEG_HEAD.OHEM_MIN_KEPT": 0,
}


def add_semask_config(cfg: CN) -> None:
    """Add the keys of MaskFormer, Mask2Former and SeMask (:data:`SEMASK_DEFAULTS`) that ``cfg``
    does not have yet, in place (idempotent; existing keys keep their values)."""
    add_maskformer2_config(cfg)
    add_config_defaults(cfg, SEMASK_DEFAULTS)


#: The entry point of the family (``setup.py``: ``segcore.model_families``).
FAMILY = ModelFamily(name="semask", add_config=add_semask_config, extends=("mask2former",))
