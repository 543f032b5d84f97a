"""Instance inference on hand-built query outputs (Mask2Former's top-k over queries x classes)."""
import math

import pytest
import torch

from mask_former.inference import instance_inference


def _logits(probs):
    """Class logits whose softmax is ``probs`` (rows sum to 1, last column "no object")."""
    return torch.log(torch.tensor(probs, dtype=torch.float32))


def test_topk_over_queries_and_classes_with_mask_scores():
    # 2 queries, 2 classes (+ no object); masks on a 4 x 4 image
    cls = _logits([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
    masks = torch.full((2, 4, 4), -5.0)
    masks[0, :2] = 3.0  # query 0: top half, sigmoid(3) inside
    masks[1, :, :1] = 0.5  # query 1: left column, sigmoid(0.5) inside
    out = instance_inference(cls, masks, topk=3)
    # candidates by class probability: (q0, c0) 0.7, (q1, c1) 0.6, (q0, c1) 0.2
    assert out.pred_classes.tolist() == [0, 1, 1]
    s3, s05 = 1 / (1 + math.exp(-3.0)), 1 / (1 + math.exp(-0.5))
    assert out.scores.tolist() == pytest.approx([0.7 * s3, 0.6 * s05, 0.2 * s3], rel=1e-5)
    assert out.pred_masks[0].sum() == 8 and out.pred_masks[1].sum() == 4 and torch.equal(out.pred_masks[2], out.pred_masks[0])
    assert out.pred_boxes.tensor[0].tolist() == [0, 0, 4, 2] and out.pred_boxes.tensor[1].tolist() == [0, 0, 1, 4]


def test_things_only_and_topk_larger_than_the_candidates():
    cls = _logits([[0.5, 0.3, 0.2], [0.2, 0.7, 0.1]])
    masks = torch.ones(2, 3, 3)
    out = instance_inference(cls, masks, topk=100, thing_classes=[1])
    assert out.pred_classes.tolist() == [1, 1] and len(out) == 2  # 4 candidates, class 0 dropped
    assert out.scores.tolist() == pytest.approx([0.7 * torch.sigmoid(torch.tensor(1.0)).item(),
                                                 0.3 * torch.sigmoid(torch.tensor(1.0)).item()], rel=1e-5)


def test_an_empty_mask_scores_zero_and_errors_are_clear():
    cls = _logits([[0.9, 0.05, 0.05]])
    out = instance_inference(cls, torch.full((1, 2, 2), -1.0), topk=1)
    assert out.scores.tolist() == [0.0] and not out.pred_masks.any()
    assert out.pred_boxes.tensor.tolist() == [[0.0, 0.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="topk"):
        instance_inference(cls, torch.zeros(1, 2, 2), topk=0)
    with pytest.raises(ValueError, match="masks"):
        instance_inference(cls, torch.zeros(2, 2, 2), topk=1)
