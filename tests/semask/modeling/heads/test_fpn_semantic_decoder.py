"""SeMask-FPN's semantic decoder: stage maps summed at the finest stride after x2 bilinear steps
without aligned corners, and left there (the loss upsamples)."""
import pytest
import torch
import torch.nn.functional as F

from semask.modeling.heads import SemanticPriorDecoder
from semask.modeling.heads.fpn_semantic_decoder import FPNSemanticPriorDecoder


def _up2(x):
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def test_it_sums_the_maps_at_the_finest_stride_with_x2_steps():
    torch.manual_seed(0)
    maps = [torch.randn(2, 3, 16 // 2 ** i, 24 // 2 ** i) for i in range(4)]
    out = FPNSemanticPriorDecoder(feature_strides=[4, 8, 16, 32])(maps)
    expected = maps[0] + _up2(maps[1]) + _up2(_up2(maps[2])) + _up2(_up2(_up2(maps[3])))
    assert out.shape == (2, 3, 16, 24)
    torch.testing.assert_close(out, expected)
    # not SeMask-MaskFormer's decoder: other corners, and that one upsamples to the input
    assert SemanticPriorDecoder(feature_strides=[4, 8, 16, 32])(maps).shape == (2, 3, 64, 96)
    one_step = maps[0] + F.interpolate(maps[3], size=(16, 24), mode="bilinear", align_corners=False)
    assert not torch.allclose(FPNSemanticPriorDecoder(feature_strides=[4, 32])([maps[0], maps[3]]), one_step,
                              atol=1e-3)


def test_sizes_that_do_not_divide_are_resized_to_the_finest_map():
    torch.manual_seed(0)
    fine, coarse = torch.randn(1, 2, 25, 13), torch.randn(1, 2, 13, 7)
    out = FPNSemanticPriorDecoder(feature_strides=[4, 8])([fine, coarse])
    expected = fine + F.interpolate(_up2(coarse), size=(25, 13), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected)


def test_it_has_no_parameters_and_checks_its_inputs():
    decoder = FPNSemanticPriorDecoder(feature_strides=[4, 8])
    assert list(decoder.parameters()) == [] and decoder.state_dict() == {}
    with pytest.raises(ValueError, match="1 maps"):
        decoder([torch.zeros(1, 1, 4, 4)])
    with pytest.raises(ValueError, match="power-of-two"):
        FPNSemanticPriorDecoder(feature_strides=[4, 12])
