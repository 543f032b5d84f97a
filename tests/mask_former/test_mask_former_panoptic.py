"""Panoptic inference on hand-built query outputs, the instance output format, and the
TransformerEncoderPixelDecoder of the COCO panoptic models."""
import os

import pytest
import torch

from mask_former.inference import instances_from_masks, panoptic_inference
from tests.reference_utils import reference_keys
from segcore.modeling import build_model
from tests.paths import CONFIGS

BIG = 12.0  # logit giving a probability ~1 after softmax / sigmoid


def _cls(classes, num_classes, conf=BIG):
    """(Q, K+1) logits whose argmax is ``classes[q]`` (K = no object)."""
    logits = torch.zeros(len(classes), num_classes + 1)
    logits[torch.arange(len(classes)), torch.tensor(classes)] = conf
    return logits


def _masks(*boxes, size=(8, 8)):
    """(Q, H, W) logits: +BIG inside each (y0, y1, x0, x1) box, -BIG outside."""
    out = torch.full((len(boxes), *size), -BIG)
    for q, (y0, y1, x0, x1) in enumerate(boxes):
        out[q, y0:y1, x0:x1] = BIG
    return out


def test_things_get_separate_segments_and_no_object_queries_are_dropped():
    # classes: 0, 1 things; 2 stuff; 3 = no object
    mask_cls = _cls([0, 0, 3], 3)
    mask_pred = _masks((0, 4, 0, 4), (4, 8, 4, 8), (0, 8, 0, 8))
    seg, info = panoptic_inference(mask_cls, mask_pred, thing_classes=[0, 1], object_mask_threshold=0.5,
                                   overlap_threshold=0.5)
    assert seg.dtype == torch.int32 and seg.shape == (8, 8)
    assert info == [{"id": 1, "isthing": True, "category_id": 0}, {"id": 2, "isthing": True, "category_id": 0}]
    assert (seg[:4, :4] == 1).all() and (seg[4:, 4:] == 2).all()
    # MaskFormer assigns every pixel to its argmax kept query, even where no mask is confident;
    # Mask2Former's variant leaves such pixels empty
    assert (seg > 0).all()
    seg, _ = panoptic_inference(mask_cls, mask_pred, thing_classes=[0, 1], object_mask_threshold=0.5,
                                overlap_threshold=0.5, mask_must_be_confident=True)
    assert (seg[:4, 4:] == 0).all() and (seg[:4, :4] == 1).all()


def test_stuff_segments_of_one_class_are_merged():
    mask_cls = _cls([2, 2, 0], 3)
    mask_pred = _masks((0, 4, 0, 8), (4, 8, 0, 4), (4, 8, 4, 8))
    seg, info = panoptic_inference(mask_cls, mask_pred, thing_classes=[0, 1], object_mask_threshold=0.5,
                                   overlap_threshold=0.5)
    assert info == [{"id": 1, "isthing": False, "category_id": 2}, {"id": 2, "isthing": True, "category_id": 0}]
    assert (seg[:4] == 1).all() and (seg[4:, :4] == 1).all() and (seg[4:, 4:] == 2).all()


def test_object_mask_threshold_drops_low_confidence_queries():
    mask_cls = _cls([0, 1], 3)
    mask_cls[1] = torch.tensor([0.0, 1.0, 0.0, 0.5])  # class 1 with probability ~0.37
    mask_pred = _masks((0, 4, 0, 4), (4, 8, 4, 8))
    _, info = panoptic_inference(mask_cls, mask_pred, thing_classes=[0, 1], object_mask_threshold=0.5,
                                 overlap_threshold=0.0)
    assert [s["category_id"] for s in info] == [0]
    _, info = panoptic_inference(mask_cls, mask_pred, thing_classes=[0, 1], object_mask_threshold=0.3,
                                 overlap_threshold=0.0)
    assert [s["category_id"] for s in info] == [0, 1]


def test_overlap_threshold_drops_mostly_hidden_segments():
    # query 1 (class 1) wants the right half, but the more confident query 0 covers 3/4 of it
    mask_cls = _cls([0, 1], 3)
    mask_cls[1, 1] = BIG / 2
    mask_pred = _masks((0, 8, 0, 7), (0, 8, 4, 8))
    seg, info = panoptic_inference(mask_cls, mask_pred, thing_classes=[0, 1], object_mask_threshold=0.0,
                                   overlap_threshold=0.5)
    # query 1 keeps only column 7: 8 of 32 pixels = 0.25 < 0.5 -> dropped, its pixels left empty
    assert [s["category_id"] for s in info] == [0]
    assert (seg[:, 7] == 0).all() and (seg[:, :7] == 1).all()
    _, info = panoptic_inference(mask_cls, mask_pred, thing_classes=[0, 1], object_mask_threshold=0.0,
                                 overlap_threshold=0.2)
    assert [s["category_id"] for s in info] == [0, 1]


def test_confident_mask_variant_and_empty_output():
    mask_cls = _cls([0], 3)
    mask_pred = torch.full((1, 4, 4), -BIG)
    mask_pred[0, :2] = BIG
    seg, _ = panoptic_inference(mask_cls, mask_pred, thing_classes=[0], object_mask_threshold=0.0,
                                overlap_threshold=0.0, mask_must_be_confident=True)
    assert (seg[:2] == 1).all() and (seg[2:] == 0).all()  # unconfident pixels are not assigned
    seg, info = panoptic_inference(_cls([3, 3], 3), _masks((0, 2, 0, 2), (2, 4, 2, 4), size=(4, 4)),
                                   thing_classes=[0], object_mask_threshold=0.0, overlap_threshold=0.0)
    assert info == [] and (seg == 0).all()


def test_instances_from_masks_boxes_from_masks():
    masks = torch.zeros(3, 6, 9)
    masks[0, 1:4, 2:7] = 0.9
    masks[1, 5, 8] = 1.0
    inst = instances_from_masks((6, 9), masks, torch.tensor([0.9, 0.5, 0.1]), torch.tensor([3, 1, 2]))
    assert inst.pred_masks.dtype == torch.bool and inst.pred_masks.sum().item() == 3 * 5 + 1
    assert inst.pred_boxes.tensor.tolist() == [[2.0, 1.0, 7.0, 4.0], [8.0, 5.0, 9.0, 6.0], [0.0, 0.0, 0.0, 0.0]]
    assert inst.pred_classes.dtype == torch.int64 and inst.scores.tolist() == pytest.approx([0.9, 0.5, 0.1])
    with pytest.raises(ValueError, match="masks"):
        instances_from_masks((6, 9), masks, torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="image"):
        instances_from_masks((5, 9), masks, torch.zeros(3), torch.zeros(3))


def _coco_panoptic_cfg(mf_cfg, *overrides):
    mf_cfg.merge_from_file(os.path.join(CONFIGS, "coco-panoptic", "maskformer_panoptic_R50_bs64_554k.yaml"))
    mf_cfg.merge_from_list(["MODEL.WEIGHTS", "", "DATASETS.TRAIN", "()", "DATASETS.TEST", "()", *overrides])
    return mf_cfg


def test_coco_panoptic_model_state_dict_equals_original(mf_cfg):
    model = build_model(_coco_panoptic_cfg(mf_cfg))
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert ours == reference_keys("mf_coco_pan_R50")


def test_tiny_panoptic_model_outputs_semantic_and_panoptic(mf_cfg):
    cfg = _coco_panoptic_cfg(
        mf_cfg, "MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
        "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32",
        "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1", "MODEL.MASK_FORMER.HIDDEN_DIM", "32",
        "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64", "MODEL.MASK_FORMER.DEC_LAYERS", "2",
        "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "5", "MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD", "0.0",
        "MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD", "0.0")
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model([{"image": torch.randint(0, 255, (3, 50, 70), dtype=torch.uint8), "height": 100, "width": 140}])
    seg, info = out[0]["panoptic_seg"]
    assert out[0]["sem_seg"].shape == (133, 100, 140)
    assert seg.shape == (100, 140) and seg.dtype == torch.int32
    assert sorted(set(seg.unique().tolist()) - {0}) == [s["id"] for s in info]


def test_encoder_features_feed_the_predictor(mf_cfg):
    cfg = _coco_panoptic_cfg(mf_cfg, "MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
                             "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1", "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32",
                             "MODEL.SEM_SEG_HEAD.MASK_DIM", "32", "MODEL.MASK_FORMER.HIDDEN_DIM", "32",
                             "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64", "MODEL.MASK_FORMER.DEC_LAYERS", "1")
    model = build_model(cfg).eval()
    decoder = model.sem_seg_head.pixel_decoder
    feats = model.backbone(torch.randn(1, 3, 64, 96))
    mask_features, enc, multi_scale = decoder.forward_features(feats)
    assert mask_features.shape == (1, 32, 16, 24) and enc.shape == (1, 32, 2, 3)
    # the FPN levels res5, res4, res3 (coarsest first) for a multi-scale transformer decoder
    assert [tuple(f.shape[-2:]) for f in multi_scale] == [(2, 3), (4, 6), (8, 12)]
    assert decoder.layer_4.weight.shape == (32, 32, 3, 3)  # the coarsest conv reads the encoder output


def test_semantic_inference_method_other_than_probabilistic_is_refused(mf_cfg):
    mf_cfg.merge_from_file(os.path.join(CONFIGS, "ade20k-150", "maskformer_R50_bs16_160k.yaml"))
    mf_cfg.merge_from_list(["MODEL.MASK_FORMER.TEST.SEMANTIC_INFERENCE_METHOD", "iterative", "MODEL.WEIGHTS", ""])
    with pytest.raises(ValueError, match="iterative"):
        build_model(mf_cfg)
