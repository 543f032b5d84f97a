"""Instances, Boxes, BitMasks, BoxMode."""
import numpy as np
import pytest
import torch

from segcore.structures import BitMasks, Boxes, BoxMode, Instances


def test_instances_fields_indexing_and_cat():
    inst = Instances((10, 20))
    inst.gt_classes = torch.tensor([1, 2, 3])
    inst.set("names", ["a", "b", "c"])
    assert len(inst) == 3 and inst.has("names") and "gt_classes" in inst and not inst.has("x")
    with pytest.raises(ValueError, match="length 2"):
        inst.scores = torch.ones(2)
    with pytest.raises(AttributeError, match="nope"):
        inst.nope
    one = inst[-1]
    assert len(one) == 1 and one.gt_classes.tolist() == [3] and one.names == ["c"]
    assert inst[0:2].names == ["a", "b"]
    with pytest.raises(IndexError):
        inst[3]
    sub = inst[1:]
    both = Instances.cat([inst, sub])
    assert both.gt_classes.tolist() == [1, 2, 3, 2, 3] and both.names == ["a", "b", "c", "b", "c"]
    with pytest.raises(ValueError, match="image sizes"):
        Instances.cat([inst, Instances((1, 1), gt_classes=torch.tensor([0]), names=["z"])])
    moved = inst.to(torch.float64)
    assert moved.gt_classes.dtype == torch.float64 and moved.names == ["a", "b", "c"]
    inst.remove("names")
    assert not inst.has("names")
    inst.gt_masks = torch.zeros(3, 10, 20, dtype=torch.bool)
    kept = inst[inst.gt_classes > 1]  # bool-mask indexing of tensor fields
    assert kept.gt_classes.tolist() == [2, 3] and kept.gt_masks.shape == (2, 10, 20) and kept.image_size == (10, 20)
    with pytest.raises(NotImplementedError):
        len(Instances((1, 1)))


def test_boxes_area_clip_nonempty_getitem():
    b = Boxes(torch.tensor([[0, 0, 4, 2], [1, 1, 1, 5], [-3, -2, 30, 40]], dtype=torch.float64))
    assert b.tensor.dtype == torch.float32
    assert b.area().tolist() == [8.0, 0.0, 33.0 * 42.0]
    assert b.nonempty().tolist() == [True, False, True]
    b.clip((10, 20))
    assert b.tensor[2].tolist() == [0.0, 0.0, 20.0, 10.0]
    assert len(b[1]) == 1 and b[torch.tensor([True, False, True])].tensor.shape == (2, 4)
    assert Boxes([]).tensor.shape == (0, 4)
    assert len(Boxes.cat([b, b[0:1]])) == 4
    with pytest.raises(ValueError):
        Boxes(torch.zeros(3, 5))


def test_bitmasks_bounding_boxes_including_empty():
    t = torch.zeros(3, 5, 6, dtype=torch.bool)
    t[0, 1:3, 2:5] = True  # rows 1-2, cols 2-4
    t[2, 4, 0] = True  # single pixel at the bottom-left corner
    m = BitMasks(t)
    boxes = m.get_bounding_boxes()
    assert isinstance(boxes, Boxes)
    assert boxes.tensor.tolist() == [[2, 1, 5, 3], [0, 0, 0, 0], [0, 4, 1, 5]]
    assert m.nonempty().tolist() == [True, False, True]
    assert m.area().tolist() == [6, 0, 1]
    assert len(m[1:]) == 2 and m[0].tensor.shape == (1, 5, 6)
    assert BitMasks(torch.zeros(0, 5, 6)).get_bounding_boxes().tensor.shape == (0, 4)
    assert BitMasks(np.ones((1, 2, 2), np.uint8)).tensor.dtype == torch.bool
    with pytest.raises(ValueError):
        BitMasks(torch.zeros(5, 6))


def test_boxmode_convert_roundtrip():
    xywh = [1.0, 2.0, 3.0, 4.0]
    xyxy = BoxMode.convert(xywh, BoxMode.XYWH_ABS, BoxMode.XYXY_ABS)
    assert xyxy == [1.0, 2.0, 4.0, 6.0]
    arr = np.array([[1.0, 2.0, 4.0, 6.0]])
    np.testing.assert_allclose(BoxMode.convert(arr, BoxMode.XYXY_ABS, BoxMode.XYWH_ABS), [[1, 2, 3, 4]])
    assert arr.tolist() == [[1.0, 2.0, 4.0, 6.0]]  # input unchanged
