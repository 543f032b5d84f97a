"""The mask-classification loss (MaskFormer Sec. 3.2, Eq. 1 and 3).

``L = sum_j [ -log p_{σ(j)}(c_j) + 1{c_j ≠ ∅} L_mask(m_{σ(j)}, m_j) ]`` over the matched pairs σ,
with the no-object class down-weighted (``eos_coef``, 0.1 in the paper) in the cross-entropy and
``L_mask = λ_focal · focal + λ_dice · dice``; with deep supervision the same loss is added for
every decoder layer's prediction (Sec. 3.3, A.1).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from segcore.config import configurable
from segcore.utils.comm import get_world_size
from segcore.utils.registry import NamedRegistry

from .matcher import HungarianMatcher

__all__ = ["CRITERION_REGISTRY", "SetCriterion", "dice_loss", "loss_weight_dict", "sigmoid_focal_loss"]

CRITERION_REGISTRY = NamedRegistry("MASK_CLASSIFICATION_CRITERION")
CRITERION_REGISTRY.__doc__ = """
Set criteria of mask classification, by name. A transformer decoder names the criterion it is
trained with in its class attribute ``criterion_name``; the meta-architecture builds it as
``cls(cfg, num_classes=K, matcher=cls.matcher_class(cfg))`` (a ``@configurable`` class with a
``matcher_class`` attribute).
"""


def loss_weight_dict(cfg) -> Dict[str, float]:
    """``{"loss_ce": CLASS_WEIGHT, "loss_mask": MASK_WEIGHT, "loss_dice": DICE_WEIGHT}`` from
    ``MODEL.MASK_FORMER``, plus the same keys suffixed ``_{i}`` for the ``DEC_LAYERS - 1``
    intermediate predictions when ``DEEP_SUPERVISION`` (MaskFormer Sec. 3.2 and A.1; Mask2Former
    Sec. 4.1)."""
    mf = cfg.MODEL.MASK_FORMER
    final = {"loss_ce": mf.CLASS_WEIGHT, "loss_mask": mf.MASK_WEIGHT, "loss_dice": mf.DICE_WEIGHT}
    weights = dict(final)
    if mf.DEEP_SUPERVISION:
        for i in range(mf.DEC_LAYERS - 1):
            weights.update({f"{k}_{i}": v for k, v in final.items()})
    return weights


def dice_loss(inputs: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """Dice loss (Milletari et al. 2016) summed over masks and divided by ``num_masks``.

    inputs: (M, P) mask logits; targets: (M, P) in {0, 1}. Returns a scalar.
    """
    inputs = inputs.sigmoid().flatten(1)
    numerator = 2 * (inputs * targets).sum(-1)
    denominator = inputs.sum(-1) + targets.sum(-1)
    loss = 1 - (numerator + 1) / (denominator + 1)
    return loss.sum() / num_masks


def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor, num_masks: float, alpha: float = 0.25,
                       gamma: float = 2) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al. 2017), averaged over pixels, summed over masks / ``num_masks``.

    inputs: (M, P) mask logits; targets: (M, P) in {0, 1}. Returns a scalar.
    """
    prob = inputs.sigmoid()
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return loss.mean(1).sum() / num_masks


def pad_target_masks(masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """Zero-pad per-image (M_b, H_b, W_b) masks (or (M_b, T, H_b, W_b) mask tubes) to a common (H, W)
    and concatenate: (sum M_b, H, W) (or (sum M_b, T, H, W))."""
    h = max(m.shape[-2] for m in masks)
    w = max(m.shape[-1] for m in masks)
    out = []
    for m in masks:
        padded = m.new_zeros((*m.shape[:-2], h, w))
        padded[..., : m.shape[-2], : m.shape[-1]] = m
        out.append(padded)
    return torch.cat(out)


@CRITERION_REGISTRY.register()
class SetCriterion(nn.Module):
    """Match predictions to targets, then apply the classification and mask losses.

    MaskFormer's criterion (Sec. 3.2): cross-entropy with the no-object class down-weighted,
    focal + dice on the full-resolution masks of matched pairs, per decoder layer.

    Args:
        num_classes: K (the no-object class is index K).
        matcher: a module returning per-image (query index, target index) pairs.
        weight_dict: {loss name: weight}; the meta-architecture multiplies each loss by it.
        eos_coef: weight of the no-object class in the cross-entropy.
        losses: which losses to compute: "labels" and/or "masks".

    ``forward(outputs, targets)`` returns {"loss_ce", "loss_mask" (focal), "loss_dice"} and, for
    each auxiliary output i, the same keys suffixed ``_{i}``. Losses are unweighted.

    Raises:
        KeyError: an unknown loss name.
    """

    #: the matcher it is built with (``matcher_class(cfg)``)
    matcher_class = HungarianMatcher

    @configurable
    def __init__(self, *, num_classes: int, matcher: nn.Module, weight_dict: Dict[str, float], eos_coef: float,
                 losses: Sequence[str]):
        super().__init__()
        unknown = [name for name in losses if name not in self._loss_fns()]
        if unknown:
            raise KeyError(f"Unknown loss(es) {unknown}; available: {sorted(self._loss_fns())}")
        self.num_classes = num_classes
        self.matcher = matcher
        self.weight_dict = weight_dict
        self.eos_coef = eos_coef
        self.losses = list(losses)
        empty_weight = torch.ones(self.num_classes + 1)
        empty_weight[-1] = self.eos_coef
        self.register_buffer("empty_weight", empty_weight)

    @classmethod
    def from_config(cls, cfg, num_classes: int, matcher: nn.Module) -> dict:
        """Weights from :func:`loss_weight_dict`, ``eos_coef = NO_OBJECT_WEIGHT``, losses "labels" and "masks"."""
        return {"num_classes": num_classes, "matcher": matcher, "weight_dict": loss_weight_dict(cfg),
                "eos_coef": cfg.MODEL.MASK_FORMER.NO_OBJECT_WEIGHT, "losses": ["labels", "masks"]}

    def _loss_fns(self) -> dict:
        return {"labels": self.loss_labels, "masks": self.loss_masks}

    def loss_labels(self, outputs: dict, targets: List[dict], indices, num_masks: float) -> Dict[str, torch.Tensor]:
        """Cross-entropy over K+1 classes for all N queries; unmatched queries target no-object."""
        src_logits = outputs["pred_logits"].float()
        idx = self._get_src_permutation_idx(indices)
        target_classes_o = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, indices)])
        target_classes = torch.full(src_logits.shape[:2], self.num_classes, dtype=torch.int64, device=src_logits.device)
        target_classes[idx] = target_classes_o.to(src_logits.device)
        loss_ce = F.cross_entropy(src_logits.transpose(1, 2), target_classes, self.empty_weight)
        return {"loss_ce": loss_ce}

    def loss_masks(self, outputs: dict, targets: List[dict], indices, num_masks: float) -> Dict[str, torch.Tensor]:
        """``loss_mask`` and ``loss_dice`` of the matched masks (:meth:`mask_losses`); zeros that keep
        the graph when nothing is matched."""
        matched = self.matched_masks(outputs, targets, indices)
        if matched is None:  # no target in the batch: nothing to supervise, keep the graph
            zero = outputs["pred_masks"].sum() * 0.0
            return {"loss_mask": zero, "loss_dice": zero.clone()}
        return self.mask_losses(*matched, num_masks)

    def matched_masks(self, outputs: dict, targets: List[dict],
                      indices) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """The predicted masks of the matched queries and their targets, in matching order.

        Returns:
            ``(src_masks, target_masks)``: (M, h, w) mask logits (the prediction's dtype) and (M, H, W)
            target masks in the same dtype, zero-padded to the batch's largest target; None when
            no pair is matched (M = 0).
        """
        src_idx = self._get_src_permutation_idx(indices)
        tgt_idx = self._get_tgt_permutation_idx(indices)
        src_masks = outputs["pred_masks"][src_idx]
        if src_masks.shape[0] == 0:
            return None
        target_masks = pad_target_masks([t["masks"] for t in targets]).to(src_masks)
        return src_masks, target_masks[self._flat_target_index(targets, tgt_idx)]

    def mask_losses(self, src_masks: torch.Tensor, target_masks: torch.Tensor,
                    num_masks: float) -> Dict[str, torch.Tensor]:
        """MaskFormer's mask losses: focal and dice of the (M, h, w) predictions upsampled (bilinear)
        to the (M, H, W) targets' size (Sec. 3.2)."""
        src_masks = F.interpolate(src_masks[:, None], size=target_masks.shape[-2:], mode="bilinear",
                                  align_corners=False)[:, 0].flatten(1)
        target_masks = target_masks.flatten(1).view(src_masks.shape)
        return {
            "loss_mask": sigmoid_focal_loss(src_masks, target_masks, num_masks),
            "loss_dice": dice_loss(src_masks, target_masks, num_masks),
        }

    @staticmethod
    def _flat_target_index(targets: List[dict], tgt_idx: Tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        offsets = torch.cumsum(torch.tensor([0] + [len(t["masks"]) for t in targets[:-1]]), 0)
        return offsets[tgt_idx[0]] + tgt_idx[1]

    @staticmethod
    def _get_src_permutation_idx(indices) -> Tuple[torch.Tensor, torch.Tensor]:
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        src_idx = torch.cat([src for src, _ in indices])
        return batch_idx, src_idx

    @staticmethod
    def _get_tgt_permutation_idx(indices) -> Tuple[torch.Tensor, torch.Tensor]:
        batch_idx = torch.cat([torch.full_like(tgt, i) for i, (_, tgt) in enumerate(indices)])
        tgt_idx = torch.cat([tgt for _, tgt in indices])
        return batch_idx, tgt_idx

    def get_loss(self, loss: str, outputs: dict, targets: List[dict], indices, num_masks: float) -> dict:
        return self._loss_fns()[loss](outputs, targets, indices, num_masks)

    def num_masks(self, targets: List[dict], device: torch.device) -> float:
        """Average number of target masks per process (at least 1), for loss normalization."""
        n = torch.as_tensor([float(sum(len(t["labels"]) for t in targets))], device=device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(n)
        return torch.clamp(n / get_world_size(), min=1).item()

    @staticmethod
    def check_finite(outputs: dict) -> None:
        """Raise FloatingPointError if a prediction of any decoder layer holds NaN or inf.

        Checked before matching: the Hungarian matcher would otherwise fail inside scipy
        ("matrix contains invalid numeric entries") without saying why. One host-device
        synchronization for all layers; the offending outputs are looked up only on failure.

        Args:
            outputs: ``{"pred_logits", "pred_masks", ..., "aux_outputs": [per-layer dicts]}``.

        Raises:
            FloatingPointError: names each non-finite output (e.g. ``pred_masks``) and its layer
                (``aux_outputs[i]`` = decoder layer i, the last layer's outputs are the top level).
        """
        aux = outputs.get("aux_outputs") or []
        num_layers = len(aux) + 1
        layers = [(f"aux_outputs[{i}] (decoder layer {i + 1} of {num_layers})", o) for i, o in enumerate(aux)]
        layers.append((f"the final outputs (decoder layer {num_layers} of {num_layers})",
                       {k: v for k, v in outputs.items() if k != "aux_outputs"}))
        tensors = [(layer, name, v) for layer, out in layers for name, v in out.items()
                   if isinstance(v, torch.Tensor) and v.is_floating_point()]
        if not tensors:
            return
        finite = torch.stack([torch.isfinite(v).all().to(tensors[0][2].device) for _, _, v in tensors])
        if bool(finite.all()):
            return
        bad = []
        for (layer, name, v), ok in zip(tensors, finite.tolist()):
            if not ok:
                nan = int(torch.isnan(v).sum())
                inf = int(torch.isinf(v).sum())
                bad.append(f"{name} of {layer}: {nan} NaN and {inf} inf of {v.numel()} values")
        raise FloatingPointError(
            "The model's predictions are not finite, so they cannot be matched to the targets (training "
            "diverged: lower SOLVER.BASE_LR or enable SOLVER.CLIP_GRADIENTS): " + "; ".join(bad)
        )

    def forward(self, outputs: dict, targets: List[dict]) -> Dict[str, torch.Tensor]:
        """The losses of every decoder layer's predictions (see the class docstring).

        Raises:
            FloatingPointError: a prediction of some layer is NaN or infinite
                (:meth:`check_finite`), before any matching.
        """
        self.check_finite(outputs)
        outputs_without_aux = {k: v for k, v in outputs.items() if k != "aux_outputs"}
        indices = self.matcher(outputs_without_aux, targets)
        num_masks = self.num_masks(targets, next(iter(outputs_without_aux.values())).device)
        losses = {}
        for loss in self.losses:
            losses.update(self.get_loss(loss, outputs, targets, indices, num_masks))
        for i, aux_outputs in enumerate(outputs.get("aux_outputs", [])):
            indices = self.matcher(aux_outputs, targets)
            for loss in self.losses:
                l_dict = self.get_loss(loss, aux_outputs, targets, indices, num_masks)
                losses.update({f"{k}_{i}": v for k, v in l_dict.items()})
        return losses

    def __repr__(self) -> str:
        return (f"SetCriterion(num_classes={self.num_classes}, matcher={self.matcher!r}, losses={self.losses}, "
                f"weight_dict={self.weight_dict}, eos_coef={self.eos_coef})")
