"""SeMask's config keys: the original's three, with its defaults, added only where missing, on top
of MaskFormer's and Mask2Former's; the family is installed through the entry point."""
from segcore.config import get_cfg
from segcore.config.families import get_model_families
from semask import add_semask_config
from semask.config import FAMILY, SEMASK_DEFAULTS


def test_the_keys_and_defaults_of_the_original():
    original = {"MODEL.MASK_FORMER.CATE_WEIGHT": 0.4, "MODEL.SWIN.SEM_WINDOW_SIZE": 7,
                "MODEL.SWIN.NUM_SEM_BLOCKS": 1}
    # SeMask-FPN's OHEM setting is a value of the release's mmsegmentation configs; off by default
    assert SEMASK_DEFAULTS == {**original, "MODEL.SEM_SEG_HEAD.OHEM_MIN_KEPT": 0}
    cfg = get_cfg()
    add_semask_config(cfg)
    assert (cfg.MODEL.MASK_FORMER.CATE_WEIGHT, cfg.MODEL.SWIN.SEM_WINDOW_SIZE, cfg.MODEL.SWIN.NUM_SEM_BLOCKS) == \
        (0.4, 7, 1)
    # MaskFormer's and Mask2Former's keys come with it
    assert cfg.MODEL.SWIN.WINDOW_SIZE == 7 and cfg.MODEL.MASK_FORMER.TRAIN_NUM_POINTS == 112 * 112


def test_existing_values_are_kept():
    cfg = get_cfg()
    add_semask_config(cfg)
    cfg.MODEL.MASK_FORMER.CATE_WEIGHT = 1.5
    cfg.MODEL.SWIN.SEM_WINDOW_SIZE = 12
    add_semask_config(cfg)
    assert (cfg.MODEL.MASK_FORMER.CATE_WEIGHT, cfg.MODEL.SWIN.SEM_WINDOW_SIZE) == (1.5, 12)


def test_the_family_extends_mask2former_and_is_installed():
    assert FAMILY.name == "semask" and FAMILY.extends == ("mask2former",)
    assert "semask" in {family.name for family in get_model_families()}
