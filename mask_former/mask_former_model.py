"""The MaskFormer meta-architecture (Cheng et al., "Per-Pixel Classification is Not All You Need
for Semantic Segmentation", NeurIPS 2021), shared by Mask2Former (Cheng et al., CVPR 2022), whose
configs name the same ``META_ARCHITECTURE: MaskFormer``.

The model is backbone + head (pixel decoder and transformer decoder) + set criterion; what
differs between the families is chosen by what the config contains, not by a flag: the
transformer decoder (``MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME``) names the criterion it is
trained with and the panoptic convention of its paper. Subclasses extend it through
:meth:`MaskFormer.build_matcher`, :meth:`MaskFormer.build_criterion`, :meth:`MaskFormer.losses`
(e.g. a loss on extra backbone outputs) and :meth:`MaskFormer.build_postprocessor` (what runs on
each image's predictions at inference: :class:`~mask_former.inference.MaskFormerPostProcessor`).

At inference, one image goes: :meth:`MaskFormer.forward` -> ``preprocess_image`` (normalize, pad)
-> backbone -> ``sem_seg_head`` (pixel decoder, transformer decoder; last predictions only) ->
:meth:`MaskFormer.inference` -> ``self.postprocessor`` per image (masks resized block by block,
then the semantic, panoptic and instance outputs).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from segcore.config import configurable
from segcore.data import MetadataCatalog
from segcore.modeling import (META_ARCH_REGISTRY, Backbone, build_backbone, build_sem_seg_head, preprocess_images,
                              register_pixel_normalization)
from segcore.structures import ImageList, Instances
from segcore.utils.memory import retry_if_cuda_oom
from segcore.utils.registry import get_registered

from .inference import MaskFormerPostProcessor
from .modeling.criterion import CRITERION_REGISTRY
from .modeling.transformer.final_predictions import final_predictions_only
from .modeling.transformer.registry import TRANSFORMER_DECODER_REGISTRY
from .solver import mask_former_param_groups_from_config

__all__ = ["MaskFormer"]


@META_ARCH_REGISTRY.register()
class MaskFormer(nn.Module):
    """Backbone + mask-classification head + set criterion, with semantic, panoptic and instance inference.

    Args:
        backbone: a :class:`Backbone`. sem_seg_head: returns ``pred_logits`` (B, N, K+1) and
            ``pred_masks`` (B, N, h, w) (and ``aux_outputs`` with deep supervision).
        criterion: the loss (e.g. :class:`SetCriterion`); its ``weight_dict`` weights the returned losses.
        num_queries: N.
        object_mask_threshold, overlap_threshold: panoptic inference thresholds (Sec. 3.4).
        metadata: the dataset metadata (``thing_dataset_id_to_contiguous_id`` decides thing classes).
        size_divisibility: pad the batch to a multiple of this (pixels); < 0 uses the backbone's.
        sem_seg_postprocess_before_inference: resize the masks to the output size before the
            inference steps (needed by panoptic and instance inference; slower for semantic).
        pixel_mean, pixel_std: per-channel normalization in 0..255 units, in ``INPUT.FORMAT`` order.
        semantic_on, panoptic_on, instance_on: which outputs eval mode returns.
        test_topk_per_image: instances kept per image (``TEST.DETECTIONS_PER_IMAGE``).
        panoptic_mask_must_be_confident: a pixel joins a panoptic segment only where that
            segment's mask probability is >= 0.5 (Mask2Former's convention; MaskFormer's is False).
        postprocessor: what turns one image's predictions into its outputs (called as
            :class:`~mask_former.inference.MaskFormerPostProcessor` is); by default a
            ``MaskFormerPostProcessor`` with the settings above (which are then its attributes,
            readable and settable here under the original names).

    Input: a list of dicts with ``image`` (uint8 (3, H, W)), optional ``height``/``width`` (output
    size) and, for training, ``instances`` with ``gt_classes`` (M,) int64 and ``gt_masks`` (M, H, W).
    Training returns the weighted loss dict; eval returns per image ``"sem_seg"`` (K, height,
    width) float, ``"panoptic_seg"`` (int32 (height, width), segments_info) and ``"instances"``
    (:class:`Instances`) as the switches ask.

    Raises:
        ValueError: mismatched pixel mean / std; no output enabled; semantic inference off while
            masks are not resized before inference.
    """

    @configurable
    def __init__(self, *, backbone: Backbone, sem_seg_head: nn.Module, criterion: nn.Module, num_queries: int,
                 object_mask_threshold: float, overlap_threshold: float, metadata, size_divisibility: int,
                 sem_seg_postprocess_before_inference: bool, pixel_mean: Sequence[float], pixel_std: Sequence[float],
                 semantic_on: bool = True, panoptic_on: bool = False, instance_on: bool = False,
                 test_topk_per_image: int = 100, panoptic_mask_must_be_confident: bool = False,
                 postprocessor: Optional[Callable[..., dict]] = None):
        super().__init__()
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head
        self.criterion = criterion
        self.num_queries = num_queries
        self.metadata = metadata
        if size_divisibility < 0:
            size_divisibility = self.backbone.size_divisibility
        self.size_divisibility = size_divisibility
        register_pixel_normalization(self, pixel_mean, pixel_std)
        if postprocessor is None:
            postprocessor = MaskFormerPostProcessor(
                semantic_on=semantic_on, panoptic_on=panoptic_on, instance_on=instance_on,
                masks_at_output_size=sem_seg_postprocess_before_inference, thing_classes=self.thing_classes,
                object_mask_threshold=object_mask_threshold, overlap_threshold=overlap_threshold,
                panoptic_mask_must_be_confident=panoptic_mask_must_be_confident, topk=test_topk_per_image)
        self.postprocessor = postprocessor

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, cfg) -> dict:
        backbone = build_backbone(cfg)
        sem_seg_head = build_sem_seg_head(cfg, backbone.output_shape())
        mf = cfg.MODEL.MASK_FORMER
        if mf.TEST.SEMANTIC_INFERENCE_METHOD != "probabilistic":
            raise ValueError(f"MODEL.MASK_FORMER.TEST.SEMANTIC_INFERENCE_METHOD='{mf.TEST.SEMANTIC_INFERENCE_METHOD}' "
                             "is not supported; only 'probabilistic' (MaskFormer Sec. 3.4) is implemented")
        dataset_names = list(cfg.DATASETS.TRAIN) or list(cfg.DATASETS.TEST)
        metadata = MetadataCatalog.get(dataset_names[0]) if dataset_names else None
        postprocessor = cls.build_postprocessor(cfg, metadata)
        return {
            "backbone": backbone,
            "sem_seg_head": sem_seg_head,
            "criterion": cls.build_criterion(cfg, sem_seg_head.num_classes),
            "num_queries": mf.NUM_OBJECT_QUERIES,
            "object_mask_threshold": mf.TEST.OBJECT_MASK_THRESHOLD,
            "overlap_threshold": mf.TEST.OVERLAP_THRESHOLD,
            "metadata": metadata,
            "size_divisibility": mf.SIZE_DIVISIBILITY,
            "sem_seg_postprocess_before_inference": postprocessor.masks_at_output_size,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "postprocessor": postprocessor,
        }

    @classmethod
    def build_postprocessor(cls, cfg, metadata) -> MaskFormerPostProcessor:
        """What runs on each image's predictions at inference: a
        :class:`~mask_former.inference.MaskFormerPostProcessor` from ``MODEL.MASK_FORMER.TEST``, the
        dataset's thing classes and the transformer decoder's panoptic convention. Override to run
        another one (e.g. a subclass with more outputs)."""
        return MaskFormerPostProcessor(
            cfg, thing_classes=_thing_classes(metadata),
            panoptic_mask_must_be_confident=getattr(cls.transformer_decoder_class(cfg),
                                                    "panoptic_mask_must_be_confident", False))

    @classmethod
    def transformer_decoder_class(cls, cfg) -> type:
        """The class of ``MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME`` (it names the family's conventions).

        Raises:
            KeyError: the decoder is not registered.
        """
        name = cfg.MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME
        return get_registered(TRANSFORMER_DECODER_REGISTRY, name, "MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME")

    @classmethod
    def criterion_class(cls, cfg) -> type:
        """The set criterion the configured transformer decoder is trained with (its ``criterion_name``
        in ``CRITERION_REGISTRY``): MaskFormer's focal + dice for ``StandardTransformerDecoder``,
        Mask2Former's point-sampled losses for its masked-attention decoder.

        Raises:
            KeyError: the decoder or its criterion is not registered.
        """
        decoder = cls.transformer_decoder_class(cfg)
        name = getattr(decoder, "criterion_name", "SetCriterion")
        return get_registered(CRITERION_REGISTRY, name, f"{decoder.__name__}.criterion_name")

    @classmethod
    def build_matcher(cls, cfg) -> nn.Module:
        """The bipartite matcher (the criterion class's ``matcher_class``, built from the config)."""
        return cls.criterion_class(cfg).matcher_class(cfg)

    @classmethod
    def build_criterion(cls, cfg, num_classes: int) -> nn.Module:
        """The training loss: :meth:`criterion_class` with :meth:`build_matcher`'s matcher and the
        loss weights of ``MODEL.MASK_FORMER`` (CLASS/MASK/DICE_WEIGHT, NO_OBJECT_WEIGHT, deep supervision)."""
        return cls.criterion_class(cfg)(cfg, num_classes=num_classes, matcher=cls.build_matcher(cfg))

    @classmethod
    def output_tasks(cls, cfg) -> Tuple[str, ...]:
        """The outputs of eval mode, from ``MODEL.MASK_FORMER.TEST.{SEMANTIC,PANOPTIC,INSTANCE}_ON``
        (see :func:`segcore.modeling.model_output_tasks`)."""
        t = cfg.MODEL.MASK_FORMER.TEST
        return tuple(name for name, on in (("sem_seg", t.SEMANTIC_ON), ("panoptic_seg", t.PANOPTIC_ON),
                                           ("instances", t.INSTANCE_ON)) if on)

    def optimizer_param_groups(self, cfg) -> List[dict]:
        """MaskFormer's parameter groups (backbone lr multiplier, no decay on embeddings' and Swin's
        position tables; see :func:`mask_former.solver.get_mask_former_param_groups`)."""
        return mask_former_param_groups_from_config(cfg, self)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    # ------------------------------------------------------------------ forward
    def preprocess_image(self, batched_inputs: List[dict]) -> ImageList:
        """Normalize the uint8 images and pad them into one batch (padding is 0 after normalization)."""
        return preprocess_images(batched_inputs, self.pixel_mean, self.pixel_std, self.size_divisibility)

    def forward(self, batched_inputs: List[dict]):
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        if self.training:
            return self.losses(self.sem_seg_head(features), batched_inputs, images, features)
        # inference reads the last predictions only: the decoders skip the deep-supervision ones
        with final_predictions_only(self.sem_seg_head):
            outputs = self.sem_seg_head(features)
        return self.inference(outputs, batched_inputs, images)

    def losses(self, outputs: dict, batched_inputs: List[dict], images: ImageList,
               features: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The weighted training losses of a batch.

        Args:
            outputs: the head's predictions. batched_inputs: the input dicts (with ``instances``).
            images: the padded batch. features: the backbone's outputs (extra outputs of a
                backbone, e.g. SeMask's semantic maps, are there for subclasses' losses).

        Returns:
            ``{name: scalar}``: the criterion's losses times their ``weight_dict`` weight (losses
            without a weight are dropped).

        Raises:
            ValueError: an input has no ``instances``.
        """
        if any("instances" not in x for x in batched_inputs):
            raise ValueError("Training a mask-classification model needs 'instances' (gt_classes, gt_masks) in "
                             "each input; use a mask_former_* dataset mapper (INPUT.DATASET_MAPPER_NAME)")
        gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
        targets = self.prepare_targets(gt_instances, images)
        return self.weighted_losses(self.criterion(outputs, targets))

    def weighted_losses(self, losses: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Multiply each loss by ``criterion.weight_dict``; drop the losses it does not weight."""
        weights = self.criterion.weight_dict
        return {k: v * weights[k] for k, v in losses.items() if k in weights}

    def prepare_targets(self, targets: List[Instances], images: ImageList) -> List[Dict[str, torch.Tensor]]:
        """Per image ``{"labels": (M,) int64, "masks": (M, Hpad, Wpad)}``, the gt masks padded
        (bottom / right, False) to the padded batch size."""
        h, w = images.tensor.shape[-2:]
        new_targets = []
        for t in targets:
            gt_masks = getattr(t.gt_masks, "tensor", t.gt_masks)
            padded = torch.zeros((gt_masks.shape[0], h, w), dtype=gt_masks.dtype, device=gt_masks.device)
            padded[:, : gt_masks.shape[1], : gt_masks.shape[2]] = gt_masks
            new_targets.append({"labels": t.gt_classes, "masks": padded})
        return new_targets

    # ------------------------------------------------------------------ inference
    def inference(self, outputs: Dict[str, torch.Tensor], batched_inputs: List[dict],
                  images: ImageList) -> List[dict]:
        """Per-image results at each input's ``height`` x ``width``: ``self.postprocessor`` on each
        image's class logits and low-resolution mask logits.

        Runs in float32 with autocast disabled, whatever precision the network ran in (its outputs
        are cast to float32 first): the post-processing thresholds probabilities and sums over
        many pixels. On CUDA, an out-of-memory error retries the image on the CPU.
        """
        pred_logits, pred_masks = outputs["pred_logits"], outputs["pred_masks"]
        padded_size = tuple(images.tensor.shape[-2:])
        results = []
        with torch.autocast(device_type=pred_masks.device.type, enabled=False):
            pred_logits, pred_masks = pred_logits.float(), pred_masks.float()
            for mask_cls, mask_pred, input_per_image, image_size in zip(
                    pred_logits, pred_masks, batched_inputs, images.image_sizes):
                output_size = (input_per_image.get("height", image_size[0]), input_per_image.get("width", image_size[1]))
                results.append(retry_if_cuda_oom(self.postprocessor)(mask_cls, mask_pred, padded_size, image_size,
                                                                     output_size))
        return results

    @property
    def thing_classes(self) -> List[int]:
        """Contiguous ids of the dataset's thing classes (none without metadata)."""
        return _thing_classes(self.metadata)


def _thing_classes(metadata) -> List[int]:
    if metadata is None:
        return []
    return list(metadata.get("thing_dataset_id_to_contiguous_id", {}).values())


def _postprocessor_setting(name: str, doc: str) -> property:
    """A MaskFormer attribute of the original's name that reads and sets the post-processor's ``name``."""
    return property(lambda self: getattr(self.postprocessor, name),
                    lambda self, value: setattr(self.postprocessor, name, value), doc=doc)


# The original's attribute names for the inference settings, which now live in the post-processor.
for _attribute, _setting in (("semantic_on", "semantic_on"), ("panoptic_on", "panoptic_on"),
                             ("instance_on", "instance_on"), ("object_mask_threshold", "object_mask_threshold"),
                             ("overlap_threshold", "overlap_threshold"), ("test_topk_per_image", "topk"),
                             ("sem_seg_postprocess_before_inference", "masks_at_output_size"),
                             ("panoptic_mask_must_be_confident", "panoptic_mask_must_be_confident")):
    setattr(MaskFormer, _attribute, _postprocessor_setting(_setting, f"``postprocessor.{_setting}``"))
