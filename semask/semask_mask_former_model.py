"""SeMaskMaskFormer: MaskFormer / Mask2Former with SeMask's semantic-prior loss (the original's registered name).

Jain et al., "SeMask: Semantically Masked Transformers for Semantic Segmentation" (2021), Sec. 3.
The model is :class:`mask_former.MaskFormer`: the backbone (``D2SeMaskSwinTransformer``), the head
(``BranchMaskFormerHead``) and the set criterion are built from the config as for MaskFormer and
Mask2Former, so the transformer decoder a config names decides the criterion (MaskFormer's focal +
dice or Mask2Former's point-sampled losses) and the panoptic convention. What SeMask adds is one
loss: the cross-entropy of the head's semantic prior against the ground-truth semantic map, weighted
by ``MODEL.MASK_FORMER.CATE_WEIGHT``, computed in :meth:`SeMaskMaskFormer.losses`.

Inference is MaskFormer's (semantic; panoptic / instance when switched on): as in the original,
the semantic prior is not used at test time.
"""
from __future__ import annotations

from typing import Dict, List

import torch

from mask_former.mask_former_model import MaskFormer
from segcore.config import configurable
from segcore.modeling import META_ARCH_REGISTRY
from segcore.structures import ImageList

from .modeling.semantic_loss import pad_semantic_targets, semantic_prior_loss

__all__ = ["SeMaskMaskFormer"]


@META_ARCH_REGISTRY.register()
class SeMaskMaskFormer(MaskFormer):
    """:class:`MaskFormer` trained with SeMask's semantic-prior loss too.

    Args:
        cate_weight: weight of the semantic-prior loss ``loss_cate`` (``MODEL.MASK_FORMER.CATE_WEIGHT``).
        semantic_ignore_value: the ground-truth label that the loss ignores, also used to pad the
            ground truth to the padded batch (``MODEL.SEM_SEG_HEAD.IGNORE_VALUE``; the original
            hard-codes 255, the value of every released config).
        kwargs: the arguments of :class:`MaskFormer`. The head must return ``"semantic_prior"`` in
            training mode (``BranchMaskFormerHead``).

    Training input: as MaskFormer's (``instances``) plus ``"sem_seg"``, an int64 (H, W) map of
    class ids (``semantic_ignore_value`` where ignored) over the image, as the
    ``mask_former_semantic`` mapper provides. Training returns MaskFormer's weighted losses plus
    ``loss_cate`` = ``cate_weight`` x the cross-entropy of the (B, K, H, W) semantic prior, at the
    padded batch size, against the ground truth padded with ``semantic_ignore_value``. Only the
    final prediction gets it: the original's deep-supervision terms ``loss_cate_{i}`` are constant
    zeros and are not produced here.

    Raises:
        ValueError: (training) an input has no ``sem_seg`` or no ``instances``, the head returned
            no semantic prior, or the prior's size is not the padded batch's.
    """

    @configurable
    def __init__(self, *, cate_weight: float, semantic_ignore_value: int = 255, **kwargs):
        super().__init__(**kwargs)
        self.cate_weight = cate_weight
        self.semantic_ignore_value = semantic_ignore_value

    @classmethod
    def from_config(cls, cfg) -> dict:
        args = super().from_config(cfg)
        if "CATE_WEIGHT" not in cfg.MODEL.MASK_FORMER:
            raise KeyError("SeMaskMaskFormer needs MODEL.MASK_FORMER.CATE_WEIGHT: call semask.add_semask_config(cfg) "
                           "first")
        args.update(cate_weight=cfg.MODEL.MASK_FORMER.CATE_WEIGHT,
                    semantic_ignore_value=cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE)
        return args

    def losses(self, outputs: dict, batched_inputs: List[dict], images: ImageList,
               features: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """MaskFormer's weighted losses plus the weighted semantic-prior loss ``loss_cate``.

        Args:
            outputs: the head's predictions, with ``semantic_prior`` (B, K, Hpad, Wpad).
            batched_inputs: the input dicts, each with ``instances`` and ``sem_seg``.
            images: the padded batch. features: the backbone's outputs.

        Raises:
            ValueError: see the class docstring.
        """
        without = [i for i, x in enumerate(batched_inputs) if "sem_seg" not in x]
        if without:
            raise ValueError(
                f"SeMaskMaskFormer: training needs the ground-truth semantic map 'sem_seg' in every input (missing in "
                f"inputs {without}) for the semantic-prior loss; use the 'mask_former_semantic' dataset mapper "
                "(INPUT.DATASET_MAPPER_NAME) on a semantic-segmentation dataset")
        if "semantic_prior" not in outputs:
            raise ValueError(f"SeMaskMaskFormer: the head ({type(self.sem_seg_head).__name__}) returned no "
                             "'semantic_prior' in training; use MODEL.SEM_SEG_HEAD.NAME: BranchMaskFormerHead")
        losses = super().losses(outputs, batched_inputs, images, features)
        prior = outputs["semantic_prior"]
        size = tuple(images.tensor.shape[-2:])
        if tuple(prior.shape[-2:]) != size:
            raise ValueError(f"SeMaskMaskFormer: the semantic prior is {tuple(prior.shape[-2:])}, the padded batch "
                             f"{size}; the backbone's finest stride must divide MODEL.MASK_FORMER.SIZE_DIVISIBILITY")
        targets = pad_semantic_targets([x["sem_seg"].to(self.device) for x in batched_inputs], size,
                                       self.semantic_ignore_value)
        losses["loss_cate"] = self.cate_weight * semantic_prior_loss(prior, targets, self.semantic_ignore_value)
        return losses
