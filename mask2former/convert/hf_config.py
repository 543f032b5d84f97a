"""Configs between Hugging Face transformers and this project: a ``Mask2FormerConfig`` (and its
image processor's settings) as our config keys, and our config as a ``Mask2FormerConfig``, a
``MaskFormerConfig`` or an image processor (RGB: a BGR config's mean / std are reversed). The
numeric conventions the two share are listed in :mod:`mask2former.convert`.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from .errors import UnsupportedModelError
from .hf_backbones import BACKBONES_BY_OUR_NAME, OUR_STAGES, HFBackbone, backbone_for_hf_config

__all__ = ["HF_ENCODER_POINTS", "HF_NUM_FEATURE_LEVELS", "backbone_for_cfg", "hf_config_from_cfg",
           "hf_config_to_overrides", "hf_image_processor", "hf_maskformer_config_from_cfg", "pixel_normalization"]

#: HF's Mask2Former encoder samples 4 points per head and level over 3 levels (constants of its code)
HF_ENCODER_POINTS = 4
HF_NUM_FEATURE_LEVELS = 3
#: HF's Mask2Former image processor's defaults (ImageNet mean / std of 0..1 pixels)
_HF_MEAN, _HF_STD, _HF_RESCALE = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 1 / 255
#: the padding multiple of HF's image processors when ours has none
_HF_SIZE_DIVISOR = 32


def pixel_normalization(preprocessor: Optional[dict], notes: List[str]) -> Dict[str, object]:
    """``MODEL.PIXEL_MEAN`` / ``PIXEL_STD`` (0..255 units, RGB) and ``INPUT.FORMAT`` of HF's image
    processor settings (``preprocessor_config.json``; None: HF's defaults, said in ``notes``).

    Raises:
        UnsupportedModelError: the processor does not normalize.
    """
    mean, std, scale = _HF_MEAN, _HF_STD, _HF_RESCALE
    if preprocessor is None:
        notes.append("no preprocessor_config.json: assuming HF's default normalization (ImageNet mean / std)")
    else:
        if not preprocessor.get("do_normalize", True):
            raise UnsupportedModelError("the image processor does not normalize (do_normalize=False); our models do")
        mean = preprocessor.get("image_mean", mean)
        std = preprocessor.get("image_std", std)
        scale = preprocessor.get("rescale_factor", scale) if preprocessor.get("do_rescale", True) else 1.0
        if "size" in preprocessor:
            notes.append(f"HF's image processor resizes to {preprocessor['size']}; set INPUT.MIN_SIZE_TEST / "
                         "MAX_SIZE_TEST to match if needed")
    return {"MODEL.PIXEL_MEAN": [round(m / scale, 4) for m in mean],
            "MODEL.PIXEL_STD": [round(s / scale, 4) for s in std],
            "INPUT.FORMAT": "RGB"}


def _raise_if_problems(problems: List[str], intro: str) -> None:
    if problems:
        raise UnsupportedModelError(intro + ":\n  - " + "\n  - ".join(problems))


def hf_config_to_overrides(config, preprocessor: Optional[dict] = None) -> Tuple[Dict[str, object], List[str]]:
    """Our config keys that reproduce a Hugging Face ``Mask2FormerConfig``.

    Args:
        config: ``transformers.Mask2FormerConfig``.
        preprocessor: ``preprocessor_config.json`` as a dict (normalization), or None.

    Returns:
        ``({full key: value}, notes)``: the keys (model sizes, loss settings, backbone, pixel
        normalization), and remarks on settings that do not change inference.

    Raises:
        UnsupportedModelError: features our model cannot reproduce (all are listed).
    """
    problems: List[str] = []
    notes: List[str] = []
    backbone = backbone_for_hf_config(config)
    bcfg = config.backbone_config
    overrides = backbone.overrides(bcfg, problems)
    if config.activation_function != "relu":
        problems.append(f"activation_function='{config.activation_function}': our decoder FFN uses ReLU")
    strides = backbone.strides(bcfg)
    if list(config.feature_strides) != strides:
        problems.append(f"feature_strides={list(config.feature_strides)} differ from the backbone's strides {strides}")
    if config.dropout:
        notes.append(f"dropout={config.dropout}: ours applies it in the pixel decoder's encoder only (the original's "
                     "masked-attention decoder has no dropout); inference is unaffected")
    _raise_if_problems(problems, "the Hugging Face model uses features this project does not support")
    overrides.update({
        "MODEL.META_ARCHITECTURE": "MaskFormer",
        "MODEL.SEM_SEG_HEAD.NAME": "MaskFormerHead",
        "MODEL.SEM_SEG_HEAD.NUM_CLASSES": int(config.num_labels),
        "MODEL.SEM_SEG_HEAD.IGNORE_VALUE": int(config.ignore_value),
        "MODEL.SEM_SEG_HEAD.IN_FEATURES": list(OUR_STAGES),
        "MODEL.SEM_SEG_HEAD.COMMON_STRIDE": int(config.common_stride),
        "MODEL.SEM_SEG_HEAD.CONVS_DIM": int(config.feature_size),
        "MODEL.SEM_SEG_HEAD.MASK_DIM": int(config.mask_feature_size),
        "MODEL.SEM_SEG_HEAD.NORM": "GN",  # HF's FPN convs: conv without bias + GroupNorm(32)
        "MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME": "MSDeformAttnPixelDecoder",
        "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS": int(config.encoder_layers),
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES": list(OUR_STAGES[-HF_NUM_FEATURE_LEVELS:]),
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS": HF_ENCODER_POINTS,
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS": int(config.num_attention_heads),
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_DIM_FEEDFORWARD": int(config.encoder_feedforward_dim),
        "MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME": "MultiScaleMaskedTransformerDecoder",
        "MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE": "multi_scale_pixel_decoder",
        "MODEL.MASK_FORMER.HIDDEN_DIM": int(config.hidden_dim),
        "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES": int(config.num_queries),
        "MODEL.MASK_FORMER.NHEADS": int(config.num_attention_heads),
        "MODEL.MASK_FORMER.DROPOUT": float(config.dropout),
        "MODEL.MASK_FORMER.DIM_FEEDFORWARD": int(config.dim_feedforward),
        "MODEL.MASK_FORMER.DEC_LAYERS": int(config.decoder_layers),
        "MODEL.MASK_FORMER.PRE_NORM": bool(config.pre_norm),
        "MODEL.MASK_FORMER.ENFORCE_INPUT_PROJ": bool(config.enforce_input_projection),
        "MODEL.MASK_FORMER.DEEP_SUPERVISION": bool(config.use_auxiliary_loss),
        "MODEL.MASK_FORMER.NO_OBJECT_WEIGHT": float(config.no_object_weight),
        "MODEL.MASK_FORMER.CLASS_WEIGHT": float(config.class_weight),
        "MODEL.MASK_FORMER.MASK_WEIGHT": float(config.mask_weight),
        "MODEL.MASK_FORMER.DICE_WEIGHT": float(config.dice_weight),
        "MODEL.MASK_FORMER.TRAIN_NUM_POINTS": int(config.train_num_points),
        "MODEL.MASK_FORMER.OVERSAMPLE_RATIO": float(config.oversample_ratio),
        "MODEL.MASK_FORMER.IMPORTANCE_SAMPLE_RATIO": float(config.importance_sample_ratio),
        "MODEL.MASK_FORMER.SIZE_DIVISIBILITY": 32,
    })
    overrides.update(pixel_normalization(preprocessor, notes))
    return overrides, notes


def backbone_for_cfg(cfg) -> HFBackbone:
    """The adapter of our config's ``MODEL.BACKBONE.NAME``.

    Raises:
        UnsupportedModelError: a backbone with no Hugging Face counterpart here.
    """
    backbone = BACKBONES_BY_OUR_NAME.get(cfg.MODEL.BACKBONE.NAME)
    if backbone is None:
        raise UnsupportedModelError(f"MODEL.BACKBONE.NAME='{cfg.MODEL.BACKBONE.NAME}': supported: "
                                    f"{sorted(BACKBONES_BY_OUR_NAME)}")
    return backbone


def _metadata_labels(cfg, num_classes: int) -> Optional[Dict[int, str]]:
    from segcore.data import MetadataCatalog

    for name in list(cfg.DATASETS.TEST) + list(cfg.DATASETS.TRAIN):
        if name in MetadataCatalog.list():
            classes = MetadataCatalog.get(name).get("stuff_classes", None)
            if classes is not None and len(classes) == num_classes:
                return dict(enumerate(classes))
    return None


def hf_config_from_cfg(cfg):
    """The ``transformers.Mask2FormerConfig`` of our (Mask2Former) ``cfg``; labels from the
    dataset metadata's ``stuff_classes`` when they match ``NUM_CLASSES``.

    Raises:
        UnsupportedModelError: features HF's Mask2Former cannot reproduce (all are listed).
    """
    from transformers import Mask2FormerConfig

    problems: List[str] = []
    m, head, mf = cfg.MODEL, cfg.MODEL.SEM_SEG_HEAD, cfg.MODEL.MASK_FORMER
    expected = {
        "MODEL.META_ARCHITECTURE": (m.META_ARCHITECTURE, "MaskFormer"),
        "MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME": (mf.TRANSFORMER_DECODER_NAME, "MultiScaleMaskedTransformerDecoder"),
        "MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE": (mf.TRANSFORMER_IN_FEATURE, "multi_scale_pixel_decoder"),
        "MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME": (head.PIXEL_DECODER_NAME, "MSDeformAttnPixelDecoder"),
        "MODEL.SEM_SEG_HEAD.IN_FEATURES": (list(head.IN_FEATURES), OUR_STAGES),
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES": (
            list(head.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES), OUR_STAGES[-HF_NUM_FEATURE_LEVELS:]),
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS": (
            head.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS, HF_ENCODER_POINTS),
        "MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS": (
            head.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS, mf.NHEADS),
        "MODEL.SEM_SEG_HEAD.NORM": (head.NORM, "GN"),
    }
    for key, (value, want) in expected.items():
        if value != want:
            problems.append(f"{key}={value!r}: HF's Mask2Former has {want!r}")
    backbone = BACKBONES_BY_OUR_NAME.get(m.BACKBONE.NAME)
    if backbone is None:
        problems.append(f"MODEL.BACKBONE.NAME='{m.BACKBONE.NAME}': supported: {sorted(BACKBONES_BY_OUR_NAME)}")
        bcfg = None
    else:
        bcfg = backbone.hf_config(cfg, problems)
    if cfg.INPUT.FORMAT not in ("RGB", "BGR"):
        problems.append(f"INPUT.FORMAT='{cfg.INPUT.FORMAT}': only RGB and BGR images convert")
    _raise_if_problems(problems, "the model uses features Hugging Face's Mask2Former does not support")
    labels = _metadata_labels(cfg, head.NUM_CLASSES)
    label_kwargs = {"id2label": labels} if labels else {"num_labels": head.NUM_CLASSES}
    return Mask2FormerConfig(
        backbone_config=bcfg, feature_size=head.CONVS_DIM, mask_feature_size=head.MASK_DIM, hidden_dim=mf.HIDDEN_DIM,
        encoder_feedforward_dim=head.DEFORMABLE_TRANSFORMER_ENCODER_DIM_FEEDFORWARD, activation_function="relu",
        encoder_layers=head.TRANSFORMER_ENC_LAYERS, decoder_layers=mf.DEC_LAYERS, num_attention_heads=mf.NHEADS,
        dropout=mf.DROPOUT, dim_feedforward=mf.DIM_FEEDFORWARD, pre_norm=mf.PRE_NORM,
        enforce_input_projection=mf.ENFORCE_INPUT_PROJ, common_stride=head.COMMON_STRIDE,
        ignore_value=head.IGNORE_VALUE, num_queries=mf.NUM_OBJECT_QUERIES, no_object_weight=mf.NO_OBJECT_WEIGHT,
        class_weight=mf.CLASS_WEIGHT, mask_weight=mf.MASK_WEIGHT, dice_weight=mf.DICE_WEIGHT,
        train_num_points=mf.TRAIN_NUM_POINTS, oversample_ratio=mf.OVERSAMPLE_RATIO,
        importance_sample_ratio=mf.IMPORTANCE_SAMPLE_RATIO, use_auxiliary_loss=mf.DEEP_SUPERVISION,
        feature_strides=[4, 8, 16, 32], **label_kwargs)


def hf_maskformer_config_from_cfg(cfg):
    """The ``transformers.MaskFormerConfig`` of our MaskFormer ``cfg``: the same backbone (the
    adapters' ResNet / Swin mapping), FPN and mask widths, DETR decoder (layers, heads, FFN width,
    queries, dropout) and classes. (No weights convert: HF's MaskFormer names are not mapped.)

    Raises:
        UnsupportedModelError: a feature HF's MaskFormer cannot reproduce.
    """
    from transformers import DetrConfig, MaskFormerConfig

    problems: List[str] = []
    head, mf = cfg.MODEL.SEM_SEG_HEAD, cfg.MODEL.MASK_FORMER
    backbone_config = backbone_for_cfg(cfg).hf_config(cfg, problems)
    if head.PIXEL_DECODER_NAME != "BasePixelDecoder":
        problems.append(f"MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME={head.PIXEL_DECODER_NAME}: HF's MaskFormer has the "
                        "FPN pixel decoder (BasePixelDecoder) only")
    if mf.ENC_LAYERS:
        problems.append(f"MODEL.MASK_FORMER.ENC_LAYERS={mf.ENC_LAYERS}: HF's MaskFormer has no transformer encoder")
    if problems:
        raise UnsupportedModelError("; ".join(problems))
    decoder = DetrConfig(d_model=mf.HIDDEN_DIM, decoder_layers=mf.DEC_LAYERS, decoder_attention_heads=mf.NHEADS,
                         decoder_ffn_dim=mf.DIM_FEEDFORWARD, num_queries=mf.NUM_OBJECT_QUERIES, dropout=mf.DROPOUT,
                         encoder_layers=0, use_timm_backbone=False, use_pretrained_backbone=False)
    return MaskFormerConfig(backbone_config=backbone_config, decoder_config=decoder, fpn_feature_size=head.CONVS_DIM,
                            mask_feature_size=head.MASK_DIM, num_labels=head.NUM_CLASSES, use_auxiliary_loss=False,
                            output_auxiliary_logits=False)


def hf_image_processor(cfg, *, maskformer: bool = False):
    """HF's image processor that prepares images as our ``cfg`` does: RGB input, our mean / std
    (channel order turned to RGB for a BGR config), resized like our test-time resize
    (``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``; none when MIN_SIZE_TEST is 0) and padded to
    ``MODEL.MASK_FORMER.SIZE_DIVISIBILITY`` (32 when ours is 0).

    Args:
        cfg: our config.
        maskformer: HF's MaskFormer processor rather than Mask2Former's (the same settings).

    Returns:
        The processor (the torchvision-free one of transformers 5, ``*ImageProcessorPil``, where it exists).
    """
    import transformers

    name = "MaskFormerImageProcessor" if maskformer else "Mask2FormerImageProcessor"
    # transformers 5 names the PIL (torchvision-free) processor apart; in 4.x it is the only one
    processor_cls = getattr(transformers, name + "Pil", None) or getattr(transformers, name)
    order = [2, 1, 0] if cfg.INPUT.FORMAT == "BGR" else [0, 1, 2]
    size = ({"shortest_edge": cfg.INPUT.MIN_SIZE_TEST, "longest_edge": cfg.INPUT.MAX_SIZE_TEST}
            if cfg.INPUT.MIN_SIZE_TEST > 0 else None)
    divisibility = cfg.MODEL.MASK_FORMER.SIZE_DIVISIBILITY
    return processor_cls(
        do_resize=size is not None, size=size, size_divisor=divisibility if divisibility > 0 else _HF_SIZE_DIVISOR,
        image_mean=[cfg.MODEL.PIXEL_MEAN[i] / 255.0 for i in order],
        image_std=[cfg.MODEL.PIXEL_STD[i] / 255.0 for i in order], rescale_factor=1 / 255.0,
        ignore_index=cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE)
