"""Whole conversions between files, both ways: a Hugging Face Mask2Former folder -> our weights
(``.pkl`` / ``.pth``) and a YAML config inheriting one of ours, and our checkpoint + config -> a
folder that ``Mask2FormerForUniversalSegmentation.from_pretrained`` loads
(``tools/convert-hf-mask2former-to-d2.py`` is their command line)."""
from __future__ import annotations

import os
from typing import Dict, List, NamedTuple, Optional, Sequence

import torch

from segcore.convert import build_model_of_config, check_names_and_shapes, write_d2_checkpoint

from .config_writer import REPOSITORY_ROOT, write_config_yaml
from .hf import convert_d2_to_hf, convert_hf_to_d2, flip_input_channels
from .hf_backbones import backbone_for_hf_config
from .hf_checkpoint import load_hf_checkpoint
from .hf_config import backbone_for_cfg, hf_config_from_cfg, hf_config_to_overrides, hf_image_processor

__all__ = ["AUTHOR", "DEFAULT_BASE_CONFIGS", "D2ToHFResult", "HFToD2Result", "convert_d2_to_hf_folder",
           "convert_hf_folder_to_d2"]

#: written into a .pkl's ``__author__``
AUTHOR = "huggingface-transformers (tools/convert-hf-mask2former-to-d2.py)"
#: our base configs (relative to the repository), by backbone, when no base config is given
#: (COCO panoptic: the HF default model's task)
DEFAULT_BASE_CONFIGS = {
    "swin": "configs/coco/panoptic-segmentation/swin/maskformer2_swin_tiny_bs16_50ep.yaml",
    "resnet": "configs/coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml",
}


class HFToD2Result(NamedTuple):
    """What :func:`convert_hf_folder_to_d2` wrote."""

    state_dict: Dict[str, torch.Tensor]  #: our weights (as written)
    overrides: Dict[str, object]  #: the config keys written (full key -> value), MODEL.WEIGHTS included
    notes: List[str]  #: remarks on HF settings that do not change inference
    dropped: List[str]  #: HF entries with no counterpart (unused by Mask2Former)
    config: str  #: the YAML written
    base_config: str  #: the config it inherits


def convert_hf_folder_to_d2(hf_path: str, output: str, *, hf_config: Optional[str] = None,
                            base_config: Optional[str] = None, config_out: Optional[str] = None,
                            check: bool = True) -> HFToD2Result:
    """Convert a Hugging Face Mask2Former checkpoint to our weights and a config that builds the model.

    Args:
        hf_path: the HF folder (``config.json`` + weights) or a weight file (see
            :func:`~.hf_checkpoint.load_hf_checkpoint`).
        output: our weights to write: ``.pkl`` (Detectron2) or ``.pth``; exact names
            (``"matching_heuristics": False``).
        hf_config: HF's ``config.json`` (default: next to the weights).
        base_config: our config to inherit (``_BASE_``); default by backbone: :data:`DEFAULT_BASE_CONFIGS`.
        config_out: the YAML to write (default: ``output`` with ``.yaml``); it sets every key the
            HF config decides and ``MODEL.WEIGHTS`` (``output``, absolute).
        check: build our model from the written config and require the converted weights to have
            exactly its names and shapes (the YAML is removed when they do not).

    Returns:
        :class:`HFToD2Result`.

    Raises:
        FileNotFoundError: see :func:`~.hf_checkpoint.load_hf_checkpoint`.
        UnsupportedModelError: HF features our model cannot reproduce (all listed).
        ValueError: an HF entry no rule maps, weights that do not fit the model (``check``), or an
            output that is neither ``.pkl`` nor ``.pth``. Nothing is written then.
    """
    hf_state, config, preprocessor = load_hf_checkpoint(hf_path, hf_config)
    overrides, notes = hf_config_to_overrides(config, preprocessor)
    result = convert_hf_to_d2(hf_state, config)
    backbone = backbone_for_hf_config(config)
    base = base_config or os.path.join(REPOSITORY_ROOT, DEFAULT_BASE_CONFIGS[backbone.hf_model_type])
    config_out = config_out or os.path.splitext(output)[0] + ".yaml"
    overrides["MODEL.WEIGHTS"] = os.path.abspath(output)
    write_config_yaml(overrides, config_out, base_config=base,
                      header=f"Written by tools/convert-hf-mask2former-to-d2.py from {os.path.abspath(hf_path)}")
    try:
        if check:
            _, model = build_model_of_config(config_out)
            check_names_and_shapes(result.state_dict, model.state_dict(), sources=result.sources)
        write_d2_checkpoint(result.state_dict, output, author=AUTHOR, matching_heuristics=False)
    except Exception:
        os.remove(config_out)  # no config without its weights
        raise
    return HFToD2Result(result.state_dict, overrides, notes, result.dropped, config_out, base)


class D2ToHFResult(NamedTuple):
    """What :func:`convert_d2_to_hf_folder` wrote."""

    state_dict: Dict[str, torch.Tensor]  #: the HF model's entries (as written)
    config: object  #: its ``transformers.Mask2FormerConfig``
    backbone_type: str  #: HF's backbone model type ("swin", "resnet")
    flipped_to_rgb: bool  #: our model read BGR: its first convolution was flipped to read RGB
    notes: List[str]  #: remarks on settings that differ in training only


def convert_d2_to_hf_folder(checkpoint: str, output: str, *, config_file: str,
                            opts: Sequence[str] = ()) -> D2ToHFResult:
    """Write our Mask2Former checkpoint as a Hugging Face folder: ``config.json`` and
    ``model.safetensors`` (``save_pretrained``) and ``preprocessor_config.json`` with our
    normalization and test-time resize (:func:`~.hf_config.hf_image_processor`).

    Args:
        checkpoint: our weights (``.pth`` / ``.pkl``, loaded strictly by ``Checkpointer``).
        output: the folder to write.
        config_file: our config of the checkpoint.
        opts: config overrides ``[KEY, VALUE, ...]``.

    Returns:
        :class:`D2ToHFResult`.

    Raises:
        ImportError: transformers is not installed.
        UnsupportedModelError: features HF's Mask2Former cannot reproduce (all listed).
        ValueError, RuntimeError: weights that do not fit our model or HF's (names given).
    """
    from transformers import Mask2FormerForUniversalSegmentation

    from segcore.checkpoint import Checkpointer

    cfg, model = build_model_of_config(config_file, opts)
    hf_config = hf_config_from_cfg(cfg)
    notes = []
    if cfg.MODEL.MASK_FORMER.DROPOUT:
        notes.append(f"MODEL.MASK_FORMER.DROPOUT={cfg.MODEL.MASK_FORMER.DROPOUT}: HF applies it in the masked-attention "
                     "decoder too (training only; inference is unaffected)")
    Checkpointer(model).load(checkpoint, checkpointables=[], strict=True)
    ours = model.state_dict()
    backbone = backbone_for_cfg(cfg)
    flip = cfg.INPUT.FORMAT == "BGR"
    if flip:
        ours = flip_input_channels(ours, backbone)
    # built without memory or initialization (the meta device): its state dict gives the names,
    # shapes and dtypes to fill, and the filled tensors are then assigned to it
    with torch.device("meta"):
        hf_model = Mask2FormerForUniversalSegmentation(hf_config).eval()
    converted = convert_d2_to_hf(ours, hf_model.state_dict(), backbone.hf_model_type)
    hf_model.load_state_dict(converted, strict=True, assign=True)
    hf_model.save_pretrained(output)
    hf_image_processor(cfg).save_pretrained(output)
    return D2ToHFResult(converted, hf_config, backbone.hf_model_type, flip, notes)
