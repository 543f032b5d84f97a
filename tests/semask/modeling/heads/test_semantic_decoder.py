"""The semantic decoder: stage maps summed at the finest stride (each coarser map brought there by
successive x2 upsamplings, as the original), then upsampled to the input resolution."""
import pytest
import torch
import torch.nn.functional as F

from semask.modeling.heads import SemanticPriorDecoder


def test_constant_maps_sum_and_the_output_is_at_the_input_resolution():
    decoder = SemanticPriorDecoder(feature_strides=[4, 8, 16, 32])
    maps = [torch.full((2, 3, 16 // 2 ** i, 24 // 2 ** i), float(i + 1)) for i in range(4)]
    out = decoder(maps)
    assert out.shape == (2, 3, 64, 96)
    torch.testing.assert_close(out, torch.full_like(out, 10.0))
    assert list(decoder.parameters()) == []  # parameter-free: nothing in the state dict


def test_coarse_maps_are_upsampled_in_x2_steps_with_aligned_corners():
    """A stride-16 map reaches stride 4 by two x2 steps, which differs from one x4 resize."""
    torch.manual_seed(0)
    fine, coarse = torch.zeros(1, 2, 16, 16), torch.randn(1, 2, 4, 4)
    out = SemanticPriorDecoder(feature_strides=[4, 16])([fine, coarse])
    two_steps = F.interpolate(F.interpolate(coarse, scale_factor=2.0, mode="bilinear", align_corners=True),
                              scale_factor=2.0, mode="bilinear", align_corners=True)
    expected = F.interpolate(two_steps, size=(64, 64), mode="bilinear", align_corners=True)
    torch.testing.assert_close(out, expected)
    one_step = F.interpolate(F.interpolate(coarse, size=(16, 16), mode="bilinear", align_corners=True),
                             size=(64, 64), mode="bilinear", align_corners=True)
    assert not torch.allclose(out, one_step, atol=1e-3)
    # the finest map is added as it is, then upsampled by its stride
    only_fine = SemanticPriorDecoder(feature_strides=[4])([coarse])
    torch.testing.assert_close(only_fine, F.interpolate(coarse, size=(16, 16), mode="bilinear", align_corners=True))


def test_odd_sizes_are_resized_to_the_finest_map():
    maps = [torch.ones(1, 1, 15, 11), torch.ones(1, 1, 8, 6)]
    assert SemanticPriorDecoder(feature_strides=[2, 4])(maps).shape == (1, 1, 30, 22)


def test_invalid_strides_and_inputs_are_errors():
    with pytest.raises(ValueError, match="finest"):
        SemanticPriorDecoder(feature_strides=[8, 4])
    with pytest.raises(ValueError, match="power-of-two"):
        SemanticPriorDecoder(feature_strides=[4, 12])
    with pytest.raises(ValueError, match="no feature stride"):
        SemanticPriorDecoder(feature_strides=[])
    with pytest.raises(ValueError, match="2 maps"):
        SemanticPriorDecoder(feature_strides=[4, 8, 16])([torch.zeros(1, 1, 4, 4)] * 2)
