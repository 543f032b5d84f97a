"""The Hugging Face transformers ports of MaskFormer and Mask2Former as a benchmark runner
(``tools/benchmark.py --compare hf``; :mod:`segcore.benchmark`), called as their documentation
shows: image processor -> model -> the processor's post-processing for the config's outputs.

The Mask2Former port gets our model's weights converted (:mod:`mask2former.convert`: it computes
the same function), the MaskFormer port its own random initialization (HF's MaskFormer names are
not mapped).
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np
import torch

from segcore.benchmark import PRECISION_NAMES, InferenceRunner

from .convert import (
    backbone_for_cfg,
    convert_d2_to_hf,
    flip_input_channels,
    hf_config_from_cfg,
    hf_image_processor,
    hf_maskformer_config_from_cfg,
)

__all__ = ["HFInference"]


class HFInference(InferenceRunner):
    """The Hugging Face port of the config's architecture (by ``MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME``).

    ``runner(images)`` takes uint8 BGR images (H, W, 3) and returns ``{output: [per image]}`` for
    the outputs the config asks for (``MODEL.MASK_FORMER.TEST.*_ON``): ``post_process_semantic_segmentation``
    / ``_panoptic_`` (the config's thresholds, the dataset's stuff classes fused) / ``_instance_``
    (every top-k candidate, as binary maps), at each image's size, in float32.

    Raises:
        ImportError: transformers is not installed.
        ValueError: the config is neither MaskFormer nor Mask2Former, or HF cannot reproduce it
            (:class:`mask2former.convert.UnsupportedModelError`).
    """

    name = "Hugging Face transformers"

    def __init__(self, *, cfg, our_model: Optional[torch.nn.Module], seed: int):
        """
        Args:
            cfg: our config (architecture, device, ``TEST.PRECISION``, test-time resize, thresholds).
            our_model: our model of ``cfg``, whose weights the Mask2Former port gets (None: HF's
                own random initialization).
            seed: seed of HF's random initialization.
        """
        import transformers

        super().__init__(device_type=torch.device(cfg.MODEL.DEVICE).type)
        mf = cfg.MODEL.MASK_FORMER
        self.device = torch.device(cfg.MODEL.DEVICE)
        self.precision = PRECISION_NAMES.get(cfg.TEST.PRECISION, cfg.TEST.PRECISION)
        self.weights_note = ""
        torch.manual_seed(seed)
        if mf.TRANSFORMER_DECODER_NAME == "MultiScaleMaskedTransformerDecoder":
            config = hf_config_from_cfg(cfg)
            model = transformers.Mask2FormerForUniversalSegmentation(config)
            if our_model is not None:
                ours = {k: v.detach().cpu() for k, v in our_model.state_dict().items()}
                backbone = backbone_for_cfg(cfg)
                if cfg.INPUT.FORMAT == "BGR":  # HF reads RGB: flip the first convolution's inputs
                    ours = flip_input_channels(ours, backbone)
                converted = convert_d2_to_hf(ours, model.state_dict(), backbone.hf_model_type)
                model.load_state_dict(converted, strict=True)
                self.weights_note = "our random weights, converted (the same function)"
            self.processor = hf_image_processor(cfg)
        elif mf.TRANSFORMER_DECODER_NAME == "StandardTransformerDecoder":
            model = transformers.MaskFormerForInstanceSegmentation(hf_maskformer_config_from_cfg(cfg))
            self.weights_note = "HF's own random initialization"
            self.processor = hf_image_processor(cfg, maskformer=True)
        else:
            raise ValueError(f"--compare hf: no Hugging Face port of {mf.TRANSFORMER_DECODER_NAME}")
        self.model = model.eval().to(self.device)
        t = mf.TEST
        self.outputs = [name for name, on in (("sem_seg", t.SEMANTIC_ON), ("panoptic_seg", t.PANOPTIC_ON),
                                              ("instances", t.INSTANCE_ON)) if on]
        self.object_mask_threshold = t.OBJECT_MASK_THRESHOLD
        self.overlap_threshold = t.OVERLAP_THRESHOLD
        self.stuff_ids = set(self._stuff_ids(cfg))

    @staticmethod
    def _stuff_ids(cfg) -> List[int]:
        from segcore.data import MetadataCatalog

        names = list(cfg.DATASETS.TEST) or list(cfg.DATASETS.TRAIN)
        if not names:
            return []
        meta = MetadataCatalog.get(names[0])
        things = set(meta.get("thing_dataset_id_to_contiguous_id", {}).values())
        return [i for i in range(cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES) if i not in things]

    def describe(self) -> dict:
        """``{"weights": where the weights come from, "outputs": [...]}``."""
        return {"weights": self.weights_note, "outputs": self.outputs}

    def __call__(self, images: List[np.ndarray]):
        from segcore.utils.precision import inference_precision

        rgb = [np.ascontiguousarray(image[:, :, ::-1]) for image in images]
        inputs = self.processor(images=rgb, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        self.mark("network_start")
        with torch.inference_mode(), inference_precision(self.precision, self.device.type):
            outputs = self.model(**inputs)
        self.mark("network_end")
        sizes = [image.shape[:2] for image in images]
        with torch.inference_mode():
            if outputs.masks_queries_logits.dtype != torch.float32:  # post-processing in float32, as ours
                outputs.masks_queries_logits = outputs.masks_queries_logits.float()
                outputs.class_queries_logits = outputs.class_queries_logits.float()
            result = {}
            if "sem_seg" in self.outputs:
                result["sem_seg"] = self.processor.post_process_semantic_segmentation(outputs, target_sizes=sizes)
            if "panoptic_seg" in self.outputs:
                result["panoptic_seg"] = self.processor.post_process_panoptic_segmentation(
                    outputs, threshold=self.object_mask_threshold, overlap_mask_area_threshold=self.overlap_threshold,
                    label_ids_to_fuse=self.stuff_ids, target_sizes=sizes)
            if "instances" in self.outputs:
                # every top-k candidate, as binary maps (our instances keep all top-k too)
                result["instances"] = self.processor.post_process_instance_segmentation(
                    outputs, threshold=0.0, target_sizes=sizes, return_binary_maps=True)
        return result
