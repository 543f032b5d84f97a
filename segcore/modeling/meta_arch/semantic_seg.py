"""Per-pixel semantic segmentation: SEM_SEG_HEADS_REGISTRY, build_sem_seg_head, the
SemanticSegmentor meta-architecture and the SemSegFPNHead (as in Detectron2's
``detectron2/modeling/meta_arch/semantic_seg.py``)."""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from fvcore.common.registry import Registry
from torch import nn
from torch.nn import functional as F

from segcore.config import configurable
from segcore.layers import Conv2d, ShapeSpec, c2_msra_fill, get_norm
from segcore.solver import get_default_optimizer_params
from segcore.structures import ImageList
from segcore.utils.registry import get_registered

from ..backbone import Backbone, build_backbone
from ..postprocessing import sem_seg_postprocess
from ..preprocessing import preprocess_images, register_pixel_normalization
from .build import META_ARCH_REGISTRY

__all__ = ["SEM_SEG_HEADS_REGISTRY", "SemanticSegmentor", "SemSegFPNHead", "build_sem_seg_head",
           "per_pixel_cross_entropy"]

SEM_SEG_HEADS_REGISTRY = Registry("SEM_SEG_HEADS")
SEM_SEG_HEADS_REGISTRY.__doc__ = """
Registry for segmentation heads, which take backbone features and produce predictions.
A registered class is called as ``cls(cfg, input_shape)`` with ``input_shape`` the backbone's
``{name: ShapeSpec}``. ``MODEL.SEM_SEG_HEAD.NAME`` picks one.
"""


def build_sem_seg_head(cfg, input_shape: Dict[str, ShapeSpec]) -> nn.Module:
    """Build the head named by ``cfg.MODEL.SEM_SEG_HEAD.NAME``.

    Raises:
        KeyError: the name is not registered.
    """
    return get_registered(SEM_SEG_HEADS_REGISTRY, cfg.MODEL.SEM_SEG_HEAD.NAME, "MODEL.SEM_SEG_HEAD.NAME")(cfg, input_shape)


@META_ARCH_REGISTRY.register()
class SemanticSegmentor(nn.Module):
    """Backbone + per-pixel classification head (as Detectron2's ``SemanticSegmentor``).

    Args:
        backbone: a :class:`Backbone`; the batch is padded to its ``size_divisibility``.
        sem_seg_head: a module called as ``sem_seg_head(features, targets)`` that returns
            ``(logits, {})`` in eval mode, with logits (B, K, Hpad, Wpad) at the padded input
            resolution, and ``(None, {loss_name: scalar})`` in training. It must have an
            ``ignore_value`` attribute (the label of pixels excluded from the loss).
        pixel_mean, pixel_std: per-channel normalization in 0..255 units, in ``INPUT.FORMAT`` order.

    Input: a list of dicts with ``image`` (uint8 or float (C, H, W)), optional ``height`` /
    ``width`` (output size in pixels; default: the input size) and, for training, ``sem_seg``
    (int64 (H, W) class ids, ``ignore_value`` for unlabeled pixels). Targets are padded with
    ``ignore_value`` to the padded image size.

    Training returns the head's loss dict; eval returns per image ``{"sem_seg": (K, height, width)}``
    float logits, resized with :func:`sem_seg_postprocess`.

    Raises:
        ValueError: mismatched ``pixel_mean`` / ``pixel_std``, a malformed image, a missing
            ``sem_seg`` in training, or a target whose size differs from its image.
    """

    @configurable
    def __init__(self, *, backbone: Backbone, sem_seg_head: nn.Module, pixel_mean: Tuple[float, ...],
                 pixel_std: Tuple[float, ...]):
        super().__init__()
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head
        register_pixel_normalization(self, pixel_mean, pixel_std)

    @classmethod
    def from_config(cls, cfg) -> dict:
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "sem_seg_head": build_sem_seg_head(cfg, backbone.output_shape()),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }

    @classmethod
    def output_tasks(cls, cfg) -> Tuple[str, ...]:
        """The outputs in eval mode: ``("sem_seg",)`` (see :func:`segcore.modeling.model_output_tasks`)."""
        return ("sem_seg",)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def optimizer_param_groups(self, cfg) -> List[dict]:
        """The optimizer's parameter groups (see :func:`segcore.solver.get_optimizer_params`).

        The head's policy when it defines ``model_param_groups(cfg, model)`` (MaskFormer's per-pixel
        baselines are trained with MaskFormer's groups, as in the original), else Detectron2's default.
        """
        head_policy = getattr(self.sem_seg_head, "model_param_groups", None)
        if callable(head_policy):
            return head_policy(cfg, self)
        s = cfg.SOLVER
        return get_default_optimizer_params(self, base_lr=s.BASE_LR, weight_decay=s.WEIGHT_DECAY,
                                            weight_decay_norm=s.WEIGHT_DECAY_NORM, bias_lr_factor=s.BIAS_LR_FACTOR,
                                            weight_decay_bias=s.WEIGHT_DECAY_BIAS)

    def forward(self, batched_inputs: List[dict]) -> Union[Dict[str, torch.Tensor], List[dict]]:
        images = preprocess_images(batched_inputs, self.pixel_mean, self.pixel_std, self.backbone.size_divisibility,
                                   self.backbone.padding_constraints)
        features = self.backbone(images.tensor)

        if "sem_seg" in batched_inputs[0]:
            targets = []
            for i, (x, size) in enumerate(zip(batched_inputs, images.image_sizes)):
                t = x["sem_seg"]
                if tuple(t.shape[-2:]) != tuple(size):
                    raise ValueError(f"batched_inputs[{i}]['sem_seg'] has size {tuple(t.shape)}, "
                                     f"its image has {tuple(size)}")
                targets.append(t.to(self.device))
            targets = ImageList.from_tensors(targets, self.backbone.size_divisibility, self.sem_seg_head.ignore_value,
                                             padding_constraints=self.backbone.padding_constraints).tensor
        else:
            targets = None
            if self.training:
                raise ValueError("Training SemanticSegmentor needs 'sem_seg' (H, W) labels in each input")
        results, losses = self.sem_seg_head(features, targets)
        if self.training:
            return losses

        processed_results = []
        for result, input_per_image, image_size in zip(results, batched_inputs, images.image_sizes):
            height = input_per_image.get("height", image_size[0])
            width = input_per_image.get("width", image_size[1])
            processed_results.append({"sem_seg": sem_seg_postprocess(result, image_size, height, width)})
        return processed_results


@SEM_SEG_HEADS_REGISTRY.register()
class SemSegFPNHead(nn.Module):
    """The semantic branch of Panoptic FPN (Kirillov et al., CVPR 2019, Sec. 3), as Detectron2's.

    Each input level goes through ``max(1, log2(stride / common_stride))`` 3x3 conv (+norm, ReLU)
    blocks, each followed by a 2x bilinear upsampling while above ``common_stride``; the levels are
    summed and a 1x1 conv predicts K logits at stride ``common_stride``.

    Args:
        input_shape: {name: ShapeSpec} of the features used (strides in pixels, powers of 2 and
            >= common_stride).
        num_classes: K. conv_dims: width of the convs. common_stride: output stride (pixels).
        loss_weight: multiplier of the cross-entropy. norm: norm of the convs ("" for none).
        ignore_value: label excluded from the loss.

    Module names: one ``nn.Sequential`` per input feature named after it (e.g. ``p2``), and
    ``predictor``.

    ``forward(features, targets=None)``: features {name: (B, C_f, H/s, W/s)}; targets int64
    (B, H, W) or None. Training returns ``(None, {"loss_sem_seg": scalar})``; eval returns
    ``((B, K, H, W) logits upsampled by common_stride, {})``.

    Raises:
        ValueError: no input features, or a stride smaller than ``common_stride``.
    """

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, num_classes: int, conv_dims: int, common_stride: int,
                 loss_weight: float = 1.0, norm: Optional[Union[str, Callable]] = None, ignore_value: int = -1):
        super().__init__()
        input_shape = sorted(input_shape.items(), key=lambda x: x[1].stride)
        if not input_shape:
            raise ValueError("SemSegFPNHead needs at least one input feature (MODEL.SEM_SEG_HEAD.IN_FEATURES)")
        self.in_features = [k for k, _ in input_shape]
        self.ignore_value = ignore_value
        self.common_stride = common_stride
        self.loss_weight = loss_weight
        self.scale_heads = []
        for name, shape in input_shape:
            if shape.stride < common_stride:
                raise ValueError(f"Feature '{name}' has stride {shape.stride} < common_stride {common_stride}")
            head_ops = []
            head_length = max(1, int(math.log2(shape.stride) - math.log2(common_stride)))
            for k in range(head_length):
                conv = Conv2d(shape.channels if k == 0 else conv_dims, conv_dims, kernel_size=3, stride=1, padding=1,
                              bias=not norm, norm=get_norm(norm, conv_dims), activation=F.relu_)
                c2_msra_fill(conv)
                head_ops.append(conv)
                if shape.stride != common_stride:
                    head_ops.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.scale_heads.append(nn.Sequential(*head_ops))
            self.add_module(name, self.scale_heads[-1])
        self.predictor = Conv2d(conv_dims, num_classes, kernel_size=1, stride=1, padding=0)
        c2_msra_fill(self.predictor)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        head = cfg.MODEL.SEM_SEG_HEAD
        missing = [k for k in head.IN_FEATURES if k not in input_shape]
        if missing:
            raise ValueError(f"MODEL.SEM_SEG_HEAD.IN_FEATURES {list(head.IN_FEATURES)}: {missing} are not backbone "
                             f"outputs ({sorted(input_shape)})")
        return {
            "input_shape": {k: v for k, v in input_shape.items() if k in head.IN_FEATURES},
            "ignore_value": head.IGNORE_VALUE,
            "num_classes": head.NUM_CLASSES,
            "conv_dims": head.CONVS_DIM,
            "common_stride": head.COMMON_STRIDE,
            "norm": head.NORM,
            "loss_weight": head.LOSS_WEIGHT,
        }

    def forward(self, features: Dict[str, torch.Tensor], targets: Optional[torch.Tensor] = None):
        x = self.layers(features)
        if self.training:
            return None, self.losses(x, targets)
        return F.interpolate(x, scale_factor=self.common_stride, mode="bilinear", align_corners=False), {}

    def layers(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Sum of the per-level branches, then the 1x1 predictor: (B, K, H/common_stride, W/common_stride)."""
        x = self.scale_heads[0](features[self.in_features[0]])
        for name, head in zip(self.in_features[1:], self.scale_heads[1:]):
            x = x + head(features[name])
        return self.predictor(x)

    def losses(self, predictions: torch.Tensor, targets: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Mean per-pixel cross-entropy of the upsampled logits, ignoring ``ignore_value``, times ``loss_weight``."""
        return {"loss_sem_seg": per_pixel_cross_entropy(predictions, targets, self.common_stride, self.ignore_value)
                * self.loss_weight}


def per_pixel_cross_entropy(logits: torch.Tensor, targets: Optional[torch.Tensor], scale_factor: int,
                            ignore_value: int) -> torch.Tensor:
    """Mean cross-entropy over labeled pixels (the loss of per-pixel classification heads).

    Args:
        logits: (B, K, h, w) class logits at stride ``scale_factor``; computed in float32.
        targets: (B, H, W) int64 labels with H = h * scale_factor and W = w * scale_factor.
        scale_factor: bilinear upsampling factor applied to the logits first (align_corners=False).
        ignore_value: label of pixels that do not count.

    Returns:
        a scalar tensor (NaN when every pixel is ignored, as ``F.cross_entropy``).

    Raises:
        ValueError: ``targets`` is None or its size differs from the upsampled logits.
    """
    if targets is None:
        raise ValueError("Per-pixel losses need targets: pass 'sem_seg' labels in training")
    logits = F.interpolate(logits.float(), scale_factor=scale_factor, mode="bilinear", align_corners=False)
    if targets.shape[-2:] != logits.shape[-2:] or targets.shape[0] != logits.shape[0]:
        raise ValueError(f"Targets of shape {tuple(targets.shape)} do not match logits upsampled to "
                         f"{tuple(logits.shape)} (batch and H, W must agree)")
    return F.cross_entropy(logits, targets, reduction="mean", ignore_index=ignore_value)
