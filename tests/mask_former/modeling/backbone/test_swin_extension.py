"""The Swin backbone is open to extension: a subclass replaces the stage layer, works between a
stage's blocks and its downsampling, and returns extra per-stage outputs through the Detectron2
wrapper (what SeMask's semantic layers need)."""
import pytest
import torch
from torch import nn

from mask_former.modeling.backbone.swin import BasicLayer, D2SwinTransformer, PatchMerging, StageOutput, SwinTransformer

TINY = dict(embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2), window_size=4, drop_path_rate=0.0)


class _ScoringLayer(BasicLayer):
    """A stage that adds a per-token score map after its blocks (before downsampling) and
    shifts the stage output by it, as SeMask's semantic layer modifies the features."""

    def __init__(self, *, num_scores: int, **kwargs):
        super().__init__(**kwargs)
        self.score = nn.Linear(kwargs["dim"], num_scores)

    def forward(self, x, height, width):
        out = self.forward_blocks(x, height, width)
        scores = self.score(out)
        out = out + scores.mean(-1, keepdim=True)
        return StageOutput(out, {"scores": scores}, *self.forward_downsample(out, height, width))


class _ScoringSwin(D2SwinTransformer):
    def __init__(self, *, num_scores: int, **kwargs):
        self.num_scores = num_scores  # read by build_layer, which runs inside super().__init__
        super().__init__(**kwargs)

    def build_layer(self, index, **kwargs):
        return _ScoringLayer(num_scores=self.num_scores + index, **kwargs)


def test_default_stages_are_basic_layers_with_patch_merging_between():
    model = SwinTransformer(**TINY)
    assert all(type(layer) is BasicLayer for layer in model.layers)
    assert [type(layer.downsample) for layer in model.layers] == [PatchMerging] * 3 + [type(None)]


def test_blocks_and_downsampling_compose_to_the_stage():
    torch.manual_seed(0)
    layer = BasicLayer(dim=8, depth=2, num_heads=2, window_size=4, downsample=PatchMerging).eval()
    x = torch.randn(2, 9 * 7, 8)
    stage = layer(x, 9, 7)
    blocks = layer.forward_blocks(x, 9, 7)
    down, h, w = layer.forward_downsample(blocks, 9, 7)
    assert torch.equal(stage.out, blocks) and torch.equal(stage.next_x, down)
    assert (stage.next_height, stage.next_width) == (h, w) == (5, 4) and stage.extras == {}
    last = BasicLayer(dim=8, depth=1, num_heads=2, window_size=4)
    same, h, w = last.forward_downsample(blocks, 9, 7)
    assert same is blocks and (h, w) == (9, 7)


def test_a_custom_downsampling_class_is_used_between_stages():
    class _Halving(PatchMerging):
        pass

    model = SwinTransformer(**TINY, downsample_cls=_Halving)
    assert [type(layer.downsample) for layer in model.layers] == [_Halving] * 3 + [type(None)]
    out = model.forward_stages(torch.zeros(1, 3, 32, 32))
    assert [tuple(o.shape[1:]) for o in out.values()] == [(8, 8, 8), (16, 4, 4), (32, 2, 2), (64, 1, 1)]


def test_extra_stage_outputs_reach_the_detectron2_wrapper():
    torch.manual_seed(0)
    model = _ScoringSwin(num_scores=3, out_features=["res2", "res4"], **TINY).eval()
    assert all(isinstance(layer, _ScoringLayer) for layer in model.layers)
    out = model(torch.randn(2, 3, 64, 96))
    assert set(out) == {"res2", "res4", "res2_scores", "res4_scores"}
    assert out["res2"].shape == (2, 8, 16, 24) and out["res4"].shape == (2, 32, 4, 6)
    assert out["res2_scores"].shape == (2, 3, 16, 24) and out["res4_scores"].shape == (2, 5, 4, 6)
    # output_shape lists the features only: heads built from it ignore the extras
    assert set(model.output_shape()) == {"res2", "res4"}


def test_the_subclass_changes_the_features_it_shifts():
    torch.manual_seed(0)
    plain = D2SwinTransformer(**TINY).eval()
    scoring = _ScoringSwin(num_scores=2, **TINY).eval()
    scoring.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(1, 3, 32, 32)
    a, b = plain(x), scoring(x)
    assert not torch.allclose(a["res2"], b["res2"])
    with torch.no_grad():
        for layer in scoring.layers:
            layer.score.weight.zero_()
            layer.score.bias.zero_()
    b = scoring(x)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # zero scores: plain Swin again


def test_build_layer_receives_every_stage_in_order():
    seen = []

    class _Recording(SwinTransformer):
        def build_layer(self, index, **kwargs):
            seen.append((index, kwargs["dim"], kwargs["downsample"]))
            return super().build_layer(index, **kwargs)

    _Recording(**TINY)
    assert seen == [(0, 8, PatchMerging), (1, 16, PatchMerging), (2, 32, PatchMerging), (3, 64, None)]


def test_drop_path_rates_must_match_the_depth():
    with pytest.raises(ValueError, match="drop-path"):
        BasicLayer(dim=8, depth=2, num_heads=1, drop_path=[0.1])
