"""The MaskFormer meta-architecture (Cheng et al., "Per-Pixel Classification is Not All You Need
for Semantic Segmentation", NeurIPS 2021)."""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from segcore.config import configurable
from segcore.data import MetadataCatalog
from segcore.modeling import META_ARCH_REGISTRY, Backbone, build_backbone, build_sem_seg_head, sem_seg_postprocess
from segcore.structures import ImageList

from .inference import panoptic_inference, semantic_inference
from .modeling.criterion import SetCriterion
from .modeling.matcher import HungarianMatcher

__all__ = ["MaskFormer"]


@META_ARCH_REGISTRY.register()
class MaskFormer(nn.Module):
    """Backbone + MaskFormerHead + set criterion, with per-image semantic inference.

    Args:
        backbone: a :class:`Backbone`. sem_seg_head: returns ``pred_logits`` / ``pred_masks``.
        criterion: the loss (:class:`SetCriterion`). num_queries: N.
        panoptic_on: also produce ``panoptic_seg`` (Sec. 3.4, general inference).
        object_mask_threshold, overlap_threshold: panoptic inference thresholds.
        metadata: the dataset metadata (class names, thing ids) used by inference.
        size_divisibility: pad the batch to a multiple of this (pixels); < 0 uses the backbone's.
        sem_seg_postprocess_before_inference: resize the masks to the output size before
            combining them (slower, used with panoptic inference).
        pixel_mean, pixel_std: per-channel normalization in 0..255 units, in ``INPUT.FORMAT`` order.

    Input: a list of dicts with ``image`` (uint8 (3, H, W)), optional ``height``/``width`` (output
    size) and, for training, ``instances`` with ``gt_classes`` (M,) int64 and ``gt_masks`` (M, H, W).
    Training returns the weighted loss dict; eval returns per image ``{"sem_seg": (K, height, width)}``
    and, with ``panoptic_on``, ``"panoptic_seg": (int32 (height, width), segments_info)`` (thing
    classes from the metadata's ``thing_dataset_id_to_contiguous_id``).
    """

    @configurable
    def __init__(self, *, backbone: Backbone, sem_seg_head: nn.Module, criterion: nn.Module, num_queries: int,
                 panoptic_on: bool, object_mask_threshold: float, overlap_threshold: float, metadata,
                 size_divisibility: int, sem_seg_postprocess_before_inference: bool,
                 pixel_mean: Tuple[float, ...], pixel_std: Tuple[float, ...]):
        super().__init__()
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head
        self.criterion = criterion
        self.num_queries = num_queries
        self.overlap_threshold = overlap_threshold
        self.panoptic_on = panoptic_on
        self.object_mask_threshold = object_mask_threshold
        self.metadata = metadata
        if size_divisibility < 0:
            size_divisibility = self.backbone.size_divisibility
        self.size_divisibility = size_divisibility
        self.sem_seg_postprocess_before_inference = sem_seg_postprocess_before_inference
        if len(pixel_mean) != len(pixel_std):
            raise ValueError(f"PIXEL_MEAN {pixel_mean} and PIXEL_STD {pixel_std} differ in length")
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg) -> dict:
        backbone = build_backbone(cfg)
        sem_seg_head = build_sem_seg_head(cfg, backbone.output_shape())
        mf = cfg.MODEL.MASK_FORMER
        if mf.TEST.SEMANTIC_INFERENCE_METHOD != "probabilistic":
            raise ValueError(f"MODEL.MASK_FORMER.TEST.SEMANTIC_INFERENCE_METHOD='{mf.TEST.SEMANTIC_INFERENCE_METHOD}' "
                             "is not supported; only 'probabilistic' (MaskFormer Sec. 3.4) is implemented")
        matcher = HungarianMatcher(cost_class=1, cost_mask=mf.MASK_WEIGHT, cost_dice=mf.DICE_WEIGHT)
        weight_dict = {"loss_ce": 1, "loss_mask": mf.MASK_WEIGHT, "loss_dice": mf.DICE_WEIGHT}
        if mf.DEEP_SUPERVISION:
            aux_weight_dict = {}
            for i in range(mf.DEC_LAYERS - 1):
                aux_weight_dict.update({f"{k}_{i}": v for k, v in weight_dict.items()})
            weight_dict.update(aux_weight_dict)
        criterion = SetCriterion(sem_seg_head.num_classes, matcher=matcher, weight_dict=weight_dict,
                                 eos_coef=mf.NO_OBJECT_WEIGHT, losses=["labels", "masks"])
        dataset_names = list(cfg.DATASETS.TRAIN) or list(cfg.DATASETS.TEST)
        return {
            "backbone": backbone,
            "sem_seg_head": sem_seg_head,
            "criterion": criterion,
            "num_queries": mf.NUM_OBJECT_QUERIES,
            "panoptic_on": mf.TEST.PANOPTIC_ON,
            "object_mask_threshold": mf.TEST.OBJECT_MASK_THRESHOLD,
            "overlap_threshold": mf.TEST.OVERLAP_THRESHOLD,
            "metadata": MetadataCatalog.get(dataset_names[0]) if dataset_names else None,
            "size_divisibility": mf.SIZE_DIVISIBILITY,
            "sem_seg_postprocess_before_inference": (
                mf.TEST.SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE or mf.TEST.PANOPTIC_ON),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: List[dict]) -> ImageList:
        """Normalize the uint8 images and pad them into one batch (pixels outside an image are 0)."""
        images = []
        for i, x in enumerate(batched_inputs):
            img = x["image"]
            if img.dim() != 3 or img.shape[0] != self.pixel_mean.shape[0]:
                raise ValueError(f"batched_inputs[{i}]['image'] must be ({self.pixel_mean.shape[0]}, H, W); "
                                 f"got {tuple(img.shape)}")
            images.append((img.to(self.device) - self.pixel_mean) / self.pixel_std)
        return ImageList.from_tensors(images, self.size_divisibility)

    def forward(self, batched_inputs: List[dict]):
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        outputs = self.sem_seg_head(features)
        if self.training:
            if "instances" not in batched_inputs[0]:
                raise ValueError("Training MaskFormer needs 'instances' (gt_classes, gt_masks) in each input; "
                                 "use a mask_former_* dataset mapper")
            gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
            targets = self.prepare_targets(gt_instances, images)
            losses = self.criterion(outputs, targets)
            for k in list(losses.keys()):
                if k in self.criterion.weight_dict:
                    losses[k] = losses[k] * self.criterion.weight_dict[k]
                else:
                    losses.pop(k)
            return losses
        return self.inference(outputs, batched_inputs, images)

    def inference(self, outputs: Dict[str, torch.Tensor], batched_inputs: List[dict],
                  images: ImageList) -> List[dict]:
        """Turn head outputs into per-image results at each input's ``height`` x ``width``."""
        mask_cls_results = outputs["pred_logits"]
        mask_pred_results = F.interpolate(outputs["pred_masks"], size=images.tensor.shape[-2:], mode="bilinear",
                                          align_corners=False)
        processed_results = []
        for mask_cls_result, mask_pred_result, input_per_image, image_size in zip(
                mask_cls_results, mask_pred_results, batched_inputs, images.image_sizes):
            height = input_per_image.get("height", image_size[0])
            width = input_per_image.get("width", image_size[1])
            if self.sem_seg_postprocess_before_inference:
                mask_pred_result = sem_seg_postprocess(mask_pred_result, image_size, height, width)
            r = semantic_inference(mask_cls_result, mask_pred_result)
            if not self.sem_seg_postprocess_before_inference:
                r = sem_seg_postprocess(r, image_size, height, width)
            processed_results.append({"sem_seg": r})
            if self.panoptic_on:
                processed_results[-1]["panoptic_seg"] = panoptic_inference(
                    mask_cls_result, mask_pred_result, thing_classes=self.thing_classes,
                    object_mask_threshold=self.object_mask_threshold, overlap_threshold=self.overlap_threshold)
        return processed_results

    @property
    def thing_classes(self) -> List[int]:
        """Contiguous ids of the dataset's thing classes (none without metadata)."""
        if self.metadata is None:
            return []
        return list(self.metadata.get("thing_dataset_id_to_contiguous_id", {}).values())

    def prepare_targets(self, targets, images: ImageList) -> List[Dict[str, torch.Tensor]]:
        """Pad each image's gt masks (bottom/right, False) to the padded batch size."""
        h, w = images.tensor.shape[-2:]
        new_targets = []
        for t in targets:
            gt_masks = t.gt_masks
            gt_masks = getattr(gt_masks, "tensor", gt_masks)
            padded = torch.zeros((gt_masks.shape[0], h, w), dtype=gt_masks.dtype, device=gt_masks.device)
            padded[:, : gt_masks.shape[1], : gt_masks.shape[2]] = gt_masks
            new_targets.append({"labels": t.gt_classes, "masks": padded})
        return new_targets
