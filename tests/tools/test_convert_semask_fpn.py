"""tools/convert-semask-fpn-to-d2.py: a SeMask-FPN checkpoint with the released model's entries
(``tests/fixtures/semask_fpn_SwinT_keys.txt``) and random values converts, loads strictly into our
SeMask-T FPN and puts each tensor where it belongs."""
import importlib.util
import math
import os

import pytest
import torch

from mask_former.modeling.backbone.swin import relative_position_index
from segcore.checkpoint import Checkpointer
from segcore.checkpoint.safe_pickle import safe_load
from segcore.engine import setup_cfg
from segcore.modeling import build_model
from tests.paths import CONFIGS, FIXTURES, TOOLS

CONFIG = os.path.join(CONFIGS, "ade20k-150", "semask_fpn", "semfpn_semask_swin_tiny_bs16_80k.yaml")
KEYS = os.path.join(FIXTURES, "semask_fpn_SwinT_keys.txt")


def _tool():
    path = os.path.join(TOOLS, "convert-semask-fpn-to-d2.py")
    spec = importlib.util.spec_from_file_location("convert_semask_fpn_to_d2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _released_state_dict():
    """The released SeMask-T FPN (ADE20K) entries with random values (the index buffers exact)."""
    g = torch.Generator().manual_seed(0)
    state = {}
    with open(KEYS) as f:
        for line in f:
            name, shape, dtype = line.split()
            shape = [int(s) for s in shape.strip("[]").split(",") if s]
            if name.endswith("relative_position_index"):
                window = math.isqrt(shape[0])
                state[name] = relative_position_index((window, window))
            elif dtype == "int64":
                state[name] = torch.randint(0, 1000, shape, generator=g)
            else:
                state[name] = torch.randn(shape, generator=g)
    return state


@pytest.fixture(scope="module")
def model():
    return build_model(setup_cfg(CONFIG, ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu"]))


def test_the_fixture_is_the_released_layout():
    state = _released_state_dict()
    assert len(state) == 277
    assert state["decode_head.conv_seg.weight"].shape == (150, 256, 1, 1)
    assert state["decode_head.scale_heads.3.4.conv.weight"].shape == (256, 256, 3, 3)
    assert "backbone.layers.2.semantic_layer.class_injection.0.mlp_cls_q.weight" in state


@pytest.mark.parametrize("suffix", [".pkl", ".pth"])
def test_convert_then_load_strictly(tmp_path, model, suffix):
    released = _released_state_dict()
    src = tmp_path / "semask_fpn_tiny_ade20k.pth"
    torch.save({"meta": {"CLASSES": ("wall",), "iter": 80000}, "state_dict": released}, src)
    out = tmp_path / f"converted{suffix}"
    _tool().main([str(src), str(out), "--config-file", CONFIG])
    if suffix == ".pkl":
        with open(out, "rb") as f:
            data = safe_load(f)
        assert data["matching_heuristics"] is False and "SeMask-FPN" in data["__author__"]

    Checkpointer(model).load(str(out), strict=True)  # no missing, unexpected or mis-shaped entry
    ours = model.state_dict()
    pairs = {
        "sem_seg_head.res2.0.weight": "decode_head.scale_heads.0.0.conv.weight",
        "sem_seg_head.res3.0.norm.bias": "decode_head.scale_heads.1.0.bn.bias",
        "sem_seg_head.res4.2.weight": "decode_head.scale_heads.2.2.conv.weight",
        "sem_seg_head.res5.4.norm.running_var": "decode_head.scale_heads.3.4.bn.running_var",
        "sem_seg_head.res5.4.norm.num_batches_tracked": "decode_head.scale_heads.3.4.bn.num_batches_tracked",
        "sem_seg_head.predictor.weight": "decode_head.conv_seg.weight",
        "sem_seg_head.predictor.bias": "decode_head.conv_seg.bias",
        "backbone.layers.3.semantic_layer.class_injection.0.mlp_cls_k.weight":
            "backbone.layers.3.semantic_layer.class_injection.0.mlp_cls_k.weight",
        "backbone.norm2.weight": "backbone.norm2.weight",
    }
    for our_name, released_name in pairs.items():
        assert torch.equal(ours[our_name], released[released_name]), our_name
    # the classifier is not, say, a scale-head conv of the same width
    assert not torch.equal(ours["sem_seg_head.predictor.weight"].flatten()[:10],
                           released["decode_head.scale_heads.0.0.conv.weight"].flatten()[:10])


def test_unmapped_entries_are_refused_by_name(tmp_path):
    tool = _tool()
    released = _released_state_dict()
    released["neck.lateral_convs.0.conv.weight"] = torch.zeros(256, 96, 1, 1)
    released["auxiliary_head.conv_seg.weight"] = torch.zeros(150, 256, 1, 1)
    src = tmp_path / "other.pth"
    torch.save({"state_dict": released}, src)
    with pytest.raises(ValueError, match=r"2 entries.*auxiliary_head\.conv_seg\.weight.*neck\.lateral_convs"):
        tool.main([str(src), str(tmp_path / "out.pkl")])
    assert not (tmp_path / "out.pkl").exists()


def test_files_and_models_that_do_not_fit_are_errors(tmp_path):
    tool = _tool()
    bare = tmp_path / "bare.pth"
    torch.save(_released_state_dict(), bare)  # a state dict without mmcv's wrapper
    with pytest.raises(ValueError, match="no 'state_dict'"):
        tool.main([str(bare), str(tmp_path / "out.pkl")])
    with pytest.raises(FileNotFoundError):
        tool.main([str(tmp_path / "missing.pth"), str(tmp_path / "out.pkl")])
    src = tmp_path / "ok.pth"
    torch.save({"state_dict": _released_state_dict()}, src)
    with pytest.raises(ValueError, match=r"\.pkl.*\.pth"):
        tool.main([str(src), str(tmp_path / "out.bin")])
    # the ADE20K weights against a 19-class model: the classifier and semantic layers do not fit
    with pytest.raises(ValueError, match=r"shapes differ.*predictor\.weight"):
        tool.main([str(src), str(tmp_path / "out.pkl"), "--config-file", CONFIG,
                   "--opts", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "19"])


def test_name_rules():
    tool = _tool()
    assert tool.map_name("decode_head.scale_heads.1.0.bn.running_mean") == "sem_seg_head.res3.0.norm.running_mean"
    assert tool.map_name("decode_head.scale_heads.0.0.conv.bias") == "sem_seg_head.res2.0.bias"
    assert tool.map_name("backbone.patch_embed.proj.weight") == "backbone.patch_embed.proj.weight"
    assert tool.map_name("decode_head.scale_heads.0.0.gn.weight") is None
    assert tool.map_name("decode_head.loss_decode.weight") is None
