"""ceil_to_multiple: the padded size of ImageList and Swin, as integers and as torch.export sizes."""
import torch

from segcore.layers import ceil_to_multiple
from segcore.structures import ImageList


def test_rounds_up_to_the_multiple_as_image_list_pads():
    for size in range(1, 70):
        for multiple in (1, 2, 4, 7, 32):
            padded = ceil_to_multiple(size, multiple)
            assert padded % multiple == 0 and size <= padded < size + multiple
            image = torch.zeros(3, size, 5)
            assert ImageList.from_tensors([image], size_divisibility=multiple).tensor.shape[-2] == padded
    assert ceil_to_multiple(33, 0) == 33


def test_a_symbolic_size_stays_one_expression_for_every_size():
    class Pad(torch.nn.Module):
        def forward(self, x):
            h = x.shape[-1]
            return torch.nn.functional.pad(x, (0, ceil_to_multiple(h, 7) - h)).view(-1, 7).sum(-1)

    # traced as segcore.export traces (size-oblivious: one window is not a special case)
    height = torch.export.Dim("h", min=2, max=100)
    with torch.fx.experimental._config.patch(backed_size_oblivious=True):
        program = torch.export.export(Pad(), (torch.ones(1, 9),), dynamic_shapes={"x": {1: height}},
                                      prefer_deferred_runtime_asserts_over_guards=True)
    for size in (2, 7, 8, 14, 50):  # one window or more, padded or not
        assert program.module()(torch.ones(1, size)).tolist() == Pad()(torch.ones(1, size)).tolist()
