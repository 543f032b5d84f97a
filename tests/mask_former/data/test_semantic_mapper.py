"""MaskFormerSemanticDatasetMapper: exact agreement with the original mapper, config wiring, errors."""
import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from mask_former.data import MaskFormerSemanticDatasetMapper
from segcore.config import get_cfg
from segcore.data import DATASET_MAPPER_REGISTRY, build_dataset_mapper
from segcore.data import transforms as T
from segcore.data.detection_utils import SizeMismatchError
from tests.paths import FIXTURES

FIXTURE = os.path.join(FIXTURES, "mf_ade20k_sem_R50_mapper.pth")


def _input_a():
    from skimage import data

    image = cv2.resize(data.astronaut(), (328, 240), interpolation=cv2.INTER_LINEAR)
    label = np.array([3, 12, 25, 40], np.uint8)[cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) // 64]
    return image, label


def _write_pngs(tmp_path, image, label):
    img_path, seg_path = str(tmp_path / "a.png"), str(tmp_path / "a_seg.png")
    Image.fromarray(image).save(img_path)
    Image.fromarray(label).save(seg_path)
    return {"file_name": img_path, "sem_seg_file_name": seg_path}


def _mapper(**kw):
    args = dict(is_train=True, augmentations=[], image_format="RGB", ignore_label=255, size_divisibility=512)
    args.update(kw)
    return MaskFormerSemanticDatasetMapper(**args)


def _padded(unpadded, size, value):
    out = torch.full(unpadded.shape[:-2] + tuple(size), value, dtype=unpadded.dtype)
    out[..., : unpadded.shape[-2], : unpadded.shape[-1]] = unpadded
    return out


def test_matches_original_mapper_exactly(tmp_path):
    ref = torch.load(FIXTURE, weights_only=True)
    image, label = _input_a()
    dataset_dict = _write_pngs(tmp_path, image, label)
    out = _mapper()(dataset_dict)

    assert "sem_seg_file_name" in dataset_dict  # the input dict is not modified
    assert out["height"] == ref["height"] and out["width"] == ref["width"]
    size = ref["padded_hw"]
    expected_image = _padded(ref["image_unpadded"], size, ref["image_pad_value"])
    assert out["image"].dtype == torch.uint8 and torch.equal(out["image"], expected_image)
    expected_seg = _padded(ref["sem_seg_unpadded"].long(), size, ref["sem_seg_pad_value"])
    assert out["sem_seg"].dtype == torch.int64 and torch.equal(out["sem_seg"], expected_seg)

    inst = out["instances"]
    assert inst.image_size == tuple(size)
    assert inst.gt_classes.dtype == torch.int64 and torch.equal(inst.gt_classes, ref["gt_classes"])
    shape = ref["gt_masks_unpadded_shape"]
    masks = np.unpackbits(ref["gt_masks_unpadded_packbits"].numpy())[: int(np.prod(shape))].reshape(shape)
    expected_masks = _padded(torch.from_numpy(masks.astype(bool)), size, False)
    assert inst.gt_masks.dtype == torch.bool and torch.equal(inst.gt_masks, expected_masks)


def test_without_padding_and_with_ignored_pixels(tmp_path):
    image, label = _input_a()
    label = label.copy()
    label[:10] = 255
    out = _mapper(size_divisibility=-1)(_write_pngs(tmp_path, image, label))
    assert out["image"].shape == (3, 240, 328) and torch.equal(out["image"], torch.from_numpy(image).permute(2, 0, 1))
    inst = out["instances"]
    assert inst.gt_classes.tolist() == sorted(set(np.unique(label).tolist()) - {255})
    assert inst.gt_masks.shape == (len(inst), 240, 328)
    assert not inst.gt_masks[:, :10].any()
    for k, c in enumerate(inst.gt_classes.tolist()):
        assert torch.equal(inst.gt_masks[k], out["sem_seg"] == c)


def test_all_ignored_gives_empty_masks(tmp_path):
    d = _write_pngs(tmp_path, np.zeros((6, 8, 3), np.uint8), np.full((6, 8), 255, np.uint8))
    out = _mapper(size_divisibility=16)(d)
    assert out["instances"].gt_classes.shape == (0,)
    assert out["instances"].gt_masks.shape == (0, 16, 16)


def test_augmentations_keep_image_and_masks_aligned(tmp_path):
    image, label = _input_a()
    augs = [T.ResizeShortestEdge(64, 1000, "choice"), T.RandomCrop_CategoryAreaConstraint("absolute", (48, 48), 0.9, 255),
            T.ColorAugSSDTransform("RGB"), T.RandomFlip(prob=1.0)]
    np.random.seed(0)
    out = _mapper(augmentations=augs, size_divisibility=64)(_write_pngs(tmp_path, image, label))
    assert out["image"].shape == (3, 64, 64)
    seg = out["sem_seg"]
    assert (seg[48:] == 255).all() and (seg[:, 48:] == 255).all() and (out["image"][:, 48:] == 128).all()
    assert set(seg.unique().tolist()) <= {3, 12, 25, 40, 255}
    # the label map was flipped with the image: recompute it from the unflipped resize + crop
    np.random.seed(0)
    aug_input = T.AugInput(image, sem_seg=label.astype(np.float64))
    T.AugmentationList(augs[:2])(aug_input)
    np.testing.assert_array_equal(seg[:48, :48].numpy(), aug_input.sem_seg[:, ::-1].astype(np.int64))


def test_errors(tmp_path):
    image, label = _input_a()
    d = _write_pngs(tmp_path, image, label)
    with pytest.raises(RuntimeError, match="training only"):
        _mapper(is_train=False)(d)
    with pytest.raises(ValueError, match="SIZE_DIVISIBILITY"):
        _mapper(size_divisibility=128)(d)
    with pytest.raises(ValueError, match="sem_seg_file_name"):
        _mapper()({"file_name": d["file_name"]})
    Image.fromarray(label[:, :300]).save(tmp_path / "short.png")
    with pytest.raises(SizeMismatchError, match="short.png"):
        _mapper()({"file_name": d["file_name"], "sem_seg_file_name": str(tmp_path / "short.png")})
    with pytest.raises(SizeMismatchError, match="a.png"):
        _mapper()(dict(d, height=100, width=328))


def test_from_config_and_registry():
    from segcore.data import MetadataCatalog

    assert "mask_former_semantic" in DATASET_MAPPER_REGISTRY
    cfg = get_cfg()
    cfg.DATASETS.TRAIN = ("ade20k_sem_seg_train",)
    cfg.INPUT.DATASET_MAPPER_NAME = "mask_former_semantic"
    cfg.INPUT.MIN_SIZE_TRAIN = (256, 512)
    cfg.INPUT.MAX_SIZE_TRAIN = 2048
    cfg.INPUT.CROP.ENABLED = True
    cfg.INPUT.CROP.TYPE = "absolute"
    cfg.INPUT.CROP.SIZE = (512, 512)
    cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA = 0.75
    cfg.INPUT.COLOR_AUG_SSD = True
    cfg.INPUT.SIZE_DIVISIBILITY = 512
    cfg.INPUT.FORMAT = "RGB"
    mapper = build_dataset_mapper(cfg, True)
    assert isinstance(mapper, MaskFormerSemanticDatasetMapper)
    kinds = [type(a).__name__ for a in mapper.tfm_gens]
    assert kinds == ["ResizeShortestEdge", "RandomCrop_CategoryAreaConstraint", "ColorAugSSDTransform", "RandomFlip"]
    assert mapper.tfm_gens[1].single_category_max_area == 0.75 and mapper.tfm_gens[1].ignored_category == 255
    assert mapper.tfm_gens[0].short_edge_length == (256, 512) and mapper.tfm_gens[0].max_size == 2048
    assert mapper.ignore_label == MetadataCatalog.get("ade20k_sem_seg_train").ignore_label
    assert mapper.size_divisibility == 512 and mapper.img_format == "RGB"
    cfg.INPUT.CROP.ENABLED = False
    cfg.INPUT.COLOR_AUG_SSD = False
    assert [type(a).__name__ for a in build_dataset_mapper(cfg, True).tfm_gens] == ["ResizeShortestEdge", "RandomFlip"]
