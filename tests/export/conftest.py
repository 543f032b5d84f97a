"""Session fixtures of the export tests: each model is exported once per session (an export traces the
whole network) and shared, read-only, by the tests that run its files."""
import functools

import pytest
import torch

from segcore.export import ExportableNetwork, ExportedPredictor, export_model
from tests.export.references import network_outputs, reference_model
from tests.mask_former.tiny_models import tiny_model


class ReferenceExport:
    """A reference model, its ONNX export (``--postprocess semantic``, traced on input A) and the
    eager network's outputs on A."""

    def __init__(self, name, export_dir):
        self.name = name
        self.cfg, self.model, self.image = reference_model(name)
        self.export_dir = str(export_dir)
        # optimize=False halves the export time; the optimized graph (the default) is tested on the
        # tiny MaskFormer of tests/tools/test_deploy_tools.py
        self.info = export_model(self.model, self.cfg, self.export_dir, format="onnx",
                                 input_size=tuple(self.image.shape[-2:]), postprocess="semantic", optimize=False,
                                 check=False)  # the tests compare the outputs themselves
        self.network = ExportableNetwork(self.model, semantic=True).eval()
        self.batch = self.image[None].float()
        self.expected, self.ties = network_outputs(self.network, self.batch)

    def bgr(self):
        """Input A as the BGR uint8 (H, W, 3) array a predictor takes."""
        rgb = self.image.permute(1, 2, 0).numpy()
        return (rgb[:, :, ::-1] if self.cfg.INPUT.FORMAT == "RGB" else rgb).copy()


#: the reference models exported by the tests: one per family (Mask2Former through its COCO panoptic
#: model, which also has panoptic and instance outputs). Each export takes 0.5 to 1.5 minutes here, so
#: m2f_ade20k_sem_R50 (the same network as m2f_coco_pan_R50 with 150 classes) is not exported again.
EXPORTED_REFERENCES = ("mf_ade20k_sem_R50", "m2f_coco_pan_R50", "semask_mf_ade_SwinT")


@pytest.fixture(scope="session", params=EXPORTED_REFERENCES)
def reference_export(request, tmp_path_factory):
    return ReferenceExport(request.param, tmp_path_factory.mktemp(f"export_{request.param}"))


class TinyExports:
    """A tiny Mask2Former (the quickstart R18 config made tiny: deformable attention and masked
    attention, random weights) exported to ONNX (without the optimizer, for time) and to pt2,
    with the pt2 folder's predictor loaded once (loading a program takes seconds)."""

    def __init__(self, root):
        self.model = tiny_model("mask2former")
        self.cfg = _tiny_cfg()
        self.onnx_dir, self.pt2_dir = str(root / "onnx"), str(root / "pt2")
        self.onnx_info = export_model(self.model, self.cfg, self.onnx_dir, format="onnx", input_size=(72, 88),
                                      optimize=False)
        self.pt2_info = export_model(self.model, self.cfg, self.pt2_dir, format="pt2", input_size=(72, 88))

    @functools.cached_property
    def pt2_predictor(self):
        """``ExportedPredictor(pt2_dir)``, shared by the tests (they only read it)."""
        return ExportedPredictor(self.pt2_dir)


def _tiny_cfg():
    import os

    from segcore.engine import setup_cfg
    from tests.mask_former.tiny_models import CONFIGS, TINY
    from tests.paths import REPO_ROOT

    return setup_cfg(os.path.join(REPO_ROOT, CONFIGS["mask2former"]), TINY)


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory):
    torch.manual_seed(0)
    return TinyExports(tmp_path_factory.mktemp("tiny_exports"))
