"""The VideoMaskFormer meta-architecture (Cheng et al., "Mask2Former for Video Instance Segmentation",
arXiv 2112.10764; the original ``mask2former_video/video_maskformer_model.py``).

It is :class:`mask_former.MaskFormer` (backbone, head with the pixel decoder and the transformer
decoder, set criterion) run on clips: the frames of the clips of a batch go through the backbone and
the pixel decoder as one batch of images; the video transformer decoder
(``VideoMultiScaleMaskedTransformerDecoder``, which the config names) decodes each clip's frames
together and predicts mask tubes; the criterion its decoder names (``VideoSetCriterion``) matches
and supervises tubes. What this class changes, each in one overridden method: the input
(:meth:`VideoMaskFormer.preprocess_image`: every frame of every video), the targets
(:meth:`VideoMaskFormer.prepare_targets`: tracks as mask tubes) and the output
(:meth:`VideoMaskFormer.inference`: one video, the original's ``inference_video``).
"""
from __future__ import annotations

from typing import Dict, List

import torch

from mask_former import MaskFormer
from segcore.config import configurable
from segcore.modeling import META_ARCH_REGISTRY, preprocess_images
from segcore.structures import ImageList

from .inference import VIDEO_TOPK, VideoInstancePostProcessor

__all__ = ["VideoMaskFormer"]


@META_ARCH_REGISTRY.register()
class VideoMaskFormer(MaskFormer):
    """Backbone + mask-classification head over clips + tube criterion, with video instance inference.

    Args:
        backbone, sem_seg_head, criterion, num_queries, object_mask_threshold, overlap_threshold,
        metadata, size_divisibility, sem_seg_postprocess_before_inference, pixel_mean, pixel_std,
        postprocessor: as :class:`~mask_former.MaskFormer` (the panoptic thresholds are kept for
            the original's interface; video inference does not read them). The default
            postprocessor is a :class:`~mask2former_video.inference.VideoInstancePostProcessor`.
        num_frames: frames per training clip (``INPUT.SAMPLING_FRAME_NUM``).

    Input: a list of videos, each a dict with ``"image"``: a list of T uint8 (3, H, W) frames (the
    config's ``INPUT.FORMAT``), optional ``"height"`` / ``"width"`` (the output size, default the
    frames' size) and, for training, ``"instances"``: one :class:`~segcore.structures.Instances` per
    frame with ``gt_classes``, ``gt_ids`` (-1 where the track is absent from the frame) and
    ``gt_masks``, the same tracks in the same order in every frame (what
    :class:`mask2former_video.data.YTVISDatasetMapper` returns). Training returns the weighted
    loss dict. Eval takes exactly one video (the whole video is one clip, as the original) and
    returns ``{"image_size": (height, width), "pred_scores": [float] * 10, "pred_labels": [int] * 10,
    "pred_masks": [bool (T, height, width)] * 10}`` (not a list), the original's output.

    Memory of one video (T frames of H x W after the test resize, N queries, padded size Hp x Wp):
    the backbone and pixel-decoder activations of all T frames at once (as a batch of T images), the
    decoder's memory of T x (H/32 W/32 + H/16 W/16 + H/8 W/8) keys per level round, the mask tubes
    N x T x Hp/4 x Wp/4 float32 (per decoder layer while decoding), then the post-processing's
    10 x Hp x Wp floats at a time and the output's 10 x T x height x width bools. All of it grows
    linearly with T; a video too long for the device can be run in overlapping windows instead
    (:class:`~mask2former_video.inference.WindowedVideoInference`, ``demo_video/demo.py --window``).

    Raises:
        ValueError: (forward) eval with other than one video; training without ``instances``, or
            with clips whose frame counts differ from ``num_frames``.
    """

    @configurable
    def __init__(self, *, num_frames: int, **kwargs):
        super().__init__(**kwargs)
        self.num_frames = num_frames

    @classmethod
    def from_config(cls, cfg) -> dict:
        """:class:`MaskFormer`'s arguments (the criterion and decoder come from the config's
        ``TRANSFORMER_DECODER_NAME``) plus ``num_frames = INPUT.SAMPLING_FRAME_NUM``."""
        args = super().from_config(cfg)
        args["num_frames"] = cfg.INPUT.SAMPLING_FRAME_NUM
        return args

    @classmethod
    def build_postprocessor(cls, cfg, metadata) -> VideoInstancePostProcessor:
        """The original's video inference: the top :data:`~mask2former_video.inference.VIDEO_TOPK`
        (query, class) pairs with their thresholded mask tubes."""
        return VideoInstancePostProcessor(topk=VIDEO_TOPK)

    @classmethod
    def output_tasks(cls, cfg):
        """The outputs of eval mode: video instances (``"video_instances"``; see
        :func:`segcore.modeling.model_output_tasks`)."""
        return ("video_instances",)

    @classmethod
    def dataset_mapper(cls, cfg, is_train: bool):
        """The clip mapper this model reads (:class:`mask2former_video.data.YTVISDatasetMapper`), in
        training and evaluation, whatever ``INPUT.DATASET_MAPPER_NAME`` says (an image mapper
        cannot feed a video model; the original configs name none). See
        :func:`segcore.modeling.model_dataset_mapper`."""
        from .data import YTVISDatasetMapper

        return YTVISDatasetMapper(cfg, is_train=is_train)

    # ------------------------------------------------------------------ forward
    def forward(self, batched_inputs: List[dict]):
        if not self.training and len(batched_inputs) != 1:
            raise ValueError(f"VideoMaskFormer evaluates one video per call (the whole video is one clip); "
                             f"got {len(batched_inputs)} videos")
        return super().forward(batched_inputs)

    def preprocess_image(self, batched_inputs: List[dict]) -> ImageList:
        """Normalize every frame of every video and pad them into one batch of B * T images
        (video after video, frames in order)."""
        frames = [{"image": frame} for video in batched_inputs for frame in video["image"]]
        return preprocess_images(frames, self.pixel_mean, self.pixel_std, self.size_divisibility)

    def losses(self, outputs: dict, batched_inputs: List[dict], images: ImageList,
               features: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The weighted training losses of a batch of clips (see :meth:`prepare_targets`).

        Raises:
            ValueError: a clip has no ``instances`` or a number of frames other than ``num_frames``.
        """
        for i, video in enumerate(batched_inputs):
            if "instances" not in video or len(video["instances"]) != len(video["image"]):
                raise ValueError(f"Training a video model needs one 'instances' per frame in each clip (clip {i}); "
                                 "use the YTVISDatasetMapper (mask2former_video.data)")
            if len(video["image"]) != self.num_frames:
                raise ValueError(f"Clip {i} has {len(video['image'])} frames; the model trains on clips of "
                                 f"INPUT.SAMPLING_FRAME_NUM = {self.num_frames}")
        targets = self.prepare_targets(batched_inputs, images)
        return self.weighted_losses(self.criterion(outputs, targets))

    def prepare_targets(self, targets: List[dict], images: ImageList) -> List[Dict[str, torch.Tensor]]:
        """Per clip ``{"labels": (M,) int64, "ids": (M, T) int64, "masks": float (M, T, Hpad, Wpad)}``:
        the tracks present in at least one frame (a track's id is -1 in the frames where it is
        absent or empty, and its mask there is empty), masks padded (bottom / right, 0) to the
        padded batch size, as the original.

        A track's label is its class in the frames where it is present. (The original takes the
        class of the clip's last frame, which is the placeholder "no object" class when the track
        is absent from that frame, so such a track was trained towards "no object" with its mask.)
        """
        h_pad, w_pad = images.tensor.shape[-2:]
        gt = []
        for video in targets:
            frames = [inst.to(self.device) for inst in video["instances"]]
            num_tracks, t = len(frames[0]), len(frames)
            masks = torch.zeros((num_tracks, t, h_pad, w_pad), dtype=torch.bool, device=self.device)
            for f, inst in enumerate(frames):
                gt_masks = getattr(inst.gt_masks, "tensor", inst.gt_masks)
                h, w = gt_masks.shape[-2:]
                masks[:, f, :h, :w] = gt_masks
            ids = torch.stack([inst.gt_ids for inst in frames], dim=1)  # (M, T)
            classes = torch.stack([inst.gt_classes for inst in frames], dim=1)  # (M, T)
            present = ids != -1
            valid = present.any(dim=1)
            # the class of the first frame where the track is present (a track's class is constant)
            first = present.to(torch.int64).argmax(dim=1)
            labels = classes.gather(1, first[:, None])[:, 0]
            gt.append({"labels": labels[valid], "ids": ids[valid], "masks": masks[valid].float()})
        return gt

    # ------------------------------------------------------------------ inference
    def inference(self, outputs: Dict[str, torch.Tensor], batched_inputs: List[dict], images: ImageList) -> dict:
        """The one video's output (the original's ``inference_video``): ``self.postprocessor`` on
        its class logits (N, K+1) and mask tubes (N, T, h, w), in float32 with autocast disabled,
        at the video's ``height`` x ``width`` (default: the frames' size)."""
        pred_logits, pred_masks = outputs["pred_logits"], outputs["pred_masks"]
        image_size = images.image_sizes[0]
        video = batched_inputs[0]
        output_size = (video.get("height", image_size[0]), video.get("width", image_size[1]))
        with torch.autocast(device_type=pred_masks.device.type, enabled=False):
            return self.postprocessor(pred_logits[0].float(), pred_masks[0].float(), tuple(images.tensor.shape[-2:]),
                                      image_size, output_size)
