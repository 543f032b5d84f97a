"""Tiny MaskFormer / Mask2Former models with decisive predictions, and the original order of the
inference steps on their full head outputs (``tests/mask_former/inference/reference.py``)."""
import os

import torch
from torch.nn import functional as F

from segcore.engine import setup_cfg
from segcore.modeling import build_model
from tests.mask_former.inference.reference import postprocess_reference
from tests.paths import REPO_ROOT

TINY = ["MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32", "MODEL.MASK_FORMER.HIDDEN_DIM", "32",
        "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "10", "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64",
        "MODEL.MASK_FORMER.NHEADS", "4", "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1",
        "MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu"]
CONFIGS = {
    "maskformer": "configs/quickstart/maskformer_R18_quickstart.yaml",
    "maskformer_panoptic": "configs/quickstart/maskformer_panoptic_R18_quickstart.yaml",
    "mask2former": "configs/quickstart/mask2former_R18_quickstart.yaml",
    "mask2former_panoptic": "configs/quickstart/mask2former_panoptic_R18_quickstart.yaml",
}
ALL_OUTPUTS = ["MODEL.MASK_FORMER.TEST.INSTANCE_ON", "True", "MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD", "0.0",
               "MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD", "0.3"]


def tiny_model(name, *opts, seed=0):
    """The quickstart config ``name`` made tiny, in eval mode, with masks of both signs and queries
    that are rarely "no object"."""
    cfg = setup_cfg(os.path.join(REPO_ROOT, CONFIGS[name]), TINY + list(opts))
    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    with torch.no_grad():
        predictor = model.sem_seg_head.predictor
        predictor.mask_embed.layers[-1].weight.mul_(5.0)
        predictor.mask_embed.layers[-1].bias.normal_()
        predictor.class_embed.bias[-1] = -5.0
    return model


def reference_outputs(model, inputs):
    """The head's full outputs (decoders not in final-predictions mode) and the original pipeline's
    per-image outputs on them."""
    with torch.no_grad():
        images = model.preprocess_image(inputs)
        head = model.sem_seg_head(model.backbone(images.tensor))
        masks = F.interpolate(head["pred_masks"], size=images.tensor.shape[-2:], mode="bilinear", align_corners=False)
        out = []
        for i, x in enumerate(inputs):
            size = images.image_sizes[i]
            out.append(postprocess_reference(
                head["pred_logits"][i], masks[i], size, x.get("height", size[0]), x.get("width", size[1]),
                semantic_on=model.semantic_on, panoptic_on=model.panoptic_on, instance_on=model.instance_on,
                resize_before_inference=model.sem_seg_postprocess_before_inference,
                thing_classes=model.thing_classes, object_mask_threshold=model.object_mask_threshold,
                overlap_threshold=model.overlap_threshold,
                mask_must_be_confident=model.panoptic_mask_must_be_confident, topk=model.test_topk_per_image))
    return head, out


def random_inputs(sizes, out_sizes=None, seed=0):
    """Input dicts of random uint8 images of ``sizes`` [(h, w)], with output sizes when given."""
    g = torch.Generator().manual_seed(seed)
    inputs = []
    for i, (h, w) in enumerate(sizes):
        x = {"image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)}
        if out_sizes is not None:
            x["height"], x["width"] = out_sizes[i]
        inputs.append(x)
    return inputs
