"""Cityscapes semantic (IoU, iIoU) and instance (AP, AP50) evaluation with the official
``cityscapesscripts`` (PyPI ``cityscapesScripts``), as Detectron2's
``evaluation/cityscapes_evaluation.py``.

Limitations (as the original): the evaluators write into a temporary folder shared by the
processes of one machine, so they do not work across several machines; only the main process
evaluates.
"""
from __future__ import annotations

import contextlib
import glob
import io
import json
import logging
import os
import tempfile
import types
from collections import OrderedDict
from typing import Callable, List, Optional

import numpy as np
import torch
from PIL import Image

from segcore.utils import comm
from segcore.utils.file_io import PathManager

from .evaluator import DatasetEvaluator

__all__ = ["CityscapesEvaluator", "CityscapesInstanceEvaluator", "CityscapesSemSegEvaluator"]

_INSTALL_HINT = "Cityscapes evaluation needs cityscapesscripts: pip install cityscapesScripts"


def _in1d(ar1, ar2, assume_unique=False, invert=False):
    """``np.in1d`` (removed in NumPy 2.4) as the flattened ``np.isin``."""
    return np.isin(ar1, ar2, assume_unique=assume_unique, invert=invert).ravel()


def _patch_numpy_in1d(module) -> None:
    """cityscapesscripts 2.3.0 (the latest release) calls ``np.in1d``, which NumPy 2.4 removed.
    Give that module (only) a view of NumPy that still has it; NumPy itself is left unchanged."""
    if hasattr(np, "in1d") or isinstance(module.np, types.SimpleNamespace):
        return
    namespace = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    namespace.in1d = _in1d
    module.np = namespace


def _json_default(o):
    return o.item() if isinstance(o, np.generic) else o.__dict__


def _json_writer(base_dir: str) -> Callable[[dict, str], None]:
    """A replacement of cityscapesscripts' ``writeDict2JSON``: it writes NumPy 2 scalars (the
    original fails on them) and puts relative paths (its ``matches.json``, otherwise written
    into the working directory) under ``base_dir``."""

    def write(data: dict, file_name: str) -> None:
        path = file_name if os.path.isabs(file_name) else os.path.join(base_dir, file_name)
        with open(path, "w") as f:
            json.dump(data, f, default=_json_default)

    return write


def _run_quietly(fn: Callable, *args):
    """Run a cityscapesscripts function with its printing captured; its ``sys.exit`` on bad input
    (``printError``) becomes a RuntimeError carrying the printed message."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            return fn(*args)
    except SystemExit as e:
        tail = out.getvalue().strip().splitlines()[-3:]
        raise RuntimeError("cityscapesscripts stopped: " + " | ".join(tail)) from e


class CityscapesEvaluator(DatasetEvaluator):
    """Base class of the Cityscapes evaluators: a temporary results folder shared by the ranks.

    Raises (at construction):
        ImportError: cityscapesscripts is not installed.
        RuntimeError: the processes span several machines.
    """

    def __init__(self, dataset_name: str):
        """
        Args:
            dataset_name: a registered dataset whose metadata has ``gt_dir`` (the ``gtFine/<split>``
                folder) and ``thing_classes`` (Cityscapes label names).
        """
        from segcore.data import MetadataCatalog

        try:
            import cityscapesscripts  # noqa: F401
        except ImportError as e:
            raise ImportError(_INSTALL_HINT) from e
        if comm.get_world_size() > comm.get_local_size():
            raise RuntimeError("Cityscapes evaluators do not work with processes on several machines")
        self._dataset_name = dataset_name
        self._metadata = MetadataCatalog.get(dataset_name)
        self._cpu_device = torch.device("cpu")
        self._logger = logging.getLogger(__name__)
        self._working_dir: Optional[tempfile.TemporaryDirectory] = None

    def reset(self) -> None:
        if self._working_dir is not None:
            self._working_dir.cleanup()
        self._working_dir = tempfile.TemporaryDirectory(prefix="cityscapes_eval_")
        self._temp_dir = self._working_dir.name
        # All ranks write into rank 0's folder (same machine).
        self._temp_dir = comm.all_gather(self._temp_dir)[0]
        if self._temp_dir != self._working_dir.name:
            self._working_dir.cleanup()
        self._logger.info("Writing cityscapes results to temporary directory %s ...", self._temp_dir)

    def _gt_files(self, pattern: str) -> List[str]:
        gt_dir = PathManager.get_local_path(self._metadata.gt_dir)
        files = sorted(glob.glob(os.path.join(gt_dir, "*", pattern)))
        if not files:
            raise FileNotFoundError(f"No ground truth {pattern} under {gt_dir}/<city>/ for '{self._dataset_name}'")
        return files

    def _configure(self, module) -> None:
        module.args.predictionPath = os.path.abspath(self._temp_dir)
        module.args.predictionWalk = None
        module.args.JSONOutput = False
        module.args.colorized = False
        module.args.quiet = True
        _patch_numpy_in1d(module)
        module.writeDict2JSON = _json_writer(self._temp_dir)

    def _run_official_evaluation(self, module, gt_pattern: str, get_prediction: Callable[[str], str],
                                 **args) -> Optional[dict]:
        """Evaluate the written predictions with a cityscapesscripts evaluation ``module`` (main
        process only; the others return None after the barrier), then remove the temporary folder.

        Args:
            module: ``evalPixelLevelSemanticLabeling`` or ``evalInstanceLevelSemanticLabeling``.
            gt_pattern: the ground-truth files (``gt_dir/<city>/<pattern>``).
            get_prediction: ground-truth file -> its prediction file (the module's ``getPrediction``).
            args: extra settings of ``module.args``.

        Returns:
            the module's ``evaluateImgLists`` result.

        Raises:
            FileNotFoundError: no ground truth; RuntimeError: cityscapesscripts stopped.
        """
        comm.synchronize()
        if comm.get_rank() > 0:
            return None
        self._logger.info("Evaluating results under %s ...", self._temp_dir)
        self._configure(module)
        for key, value in args.items():
            setattr(module.args, key, value)
        gt_files = self._gt_files(gt_pattern)
        predictions = [_run_quietly(get_prediction, gt) for gt in gt_files]
        results = _run_quietly(module.evaluateImgLists, predictions, gt_files, module.args)
        self._working_dir.cleanup()
        self._working_dir = None
        return results


class CityscapesInstanceEvaluator(CityscapesEvaluator):
    """Cityscapes instance AP with ``cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling``.

    ``process`` writes, per image, each predicted mask (``instances.pred_masks`` bool (N, H, W),
    ``pred_classes`` contiguous thing ids named by ``thing_classes``, ``scores``) as a PNG and a
    ``<image>_pred.txt`` listing them; ``evaluate`` compares them with
    ``gt_dir/*/*_gtFine_instanceIds.png``.

    Results: ``{"segm": {"AP", "AP50"}}`` in percent.
    """

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        from cityscapesscripts.helpers.labels import name2label

        for input, output in zip(inputs, outputs):
            basename = os.path.splitext(os.path.basename(input["file_name"]))[0]
            pred_txt = os.path.join(self._temp_dir, basename + "_pred.txt")
            lines = []
            if "instances" in output:
                instances = output["instances"].to(self._cpu_device)
                for i in range(len(instances)):
                    class_name = self._metadata.thing_classes[int(instances.pred_classes[i])]
                    if class_name not in name2label:
                        raise KeyError(f"Thing class '{class_name}' of '{self._dataset_name}' is not a Cityscapes label")
                    mask = instances.pred_masks[i].numpy().astype(np.uint8)
                    png_name = f"{basename}_{i}_{class_name}.png"
                    Image.fromarray(mask * 255).save(os.path.join(self._temp_dir, png_name))
                    lines.append(f"{png_name} {name2label[class_name].id} {float(instances.scores[i])}\n")
            # cityscapesscripts needs a prediction file for every ground-truth image.
            with open(pred_txt, "w") as f:
                f.writelines(lines)

    def evaluate(self) -> Optional[OrderedDict]:
        import cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling as cityscapes_eval

        results = self._run_official_evaluation(
            cityscapes_eval, "*_gtFine_instanceIds.png", lambda gt: cityscapes_eval.getPrediction(gt, cityscapes_eval.args),
            gtInstancesFile=os.path.join(self._temp_dir, "gtInstances.json"))
        if results is None:
            return None
        averages = results["averages"]
        return OrderedDict({"segm": {"AP": averages["allAp"] * 100, "AP50": averages["allAp50%"] * 100}})


class CityscapesSemSegEvaluator(CityscapesEvaluator):
    """Cityscapes semantic IoU with ``cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling``.

    ``process`` writes ``output["sem_seg"].argmax(0)`` (float (19, H, W) scores in trainId
    order) as a label-id PNG (trainIds ignored in evaluation become 255); ``evaluate``
    compares them with ``gt_dir/*/*_gtFine_labelIds.png`` (and ``*_instanceIds.png`` for iIoU).

    Results: ``{"sem_seg": {"IoU", "iIoU", "IoU_sup", "iIoU_sup"}}`` in percent (class and
    category averages).
    """

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        from cityscapesscripts.helpers.labels import trainId2label

        for input, output in zip(inputs, outputs):
            basename = os.path.splitext(os.path.basename(input["file_name"]))[0]
            train_ids = output["sem_seg"].argmax(dim=0).to(self._cpu_device).numpy()
            pred = np.full(train_ids.shape, 255, dtype=np.uint8)
            for train_id, label in trainId2label.items():
                if label.ignoreInEval:
                    continue
                pred[train_ids == train_id] = label.id
            Image.fromarray(pred).save(os.path.join(self._temp_dir, basename + "_pred.png"))

    def evaluate(self) -> Optional[OrderedDict]:
        import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as cityscapes_eval

        results = self._run_official_evaluation(
            cityscapes_eval, "*_gtFine_labelIds.png", lambda gt: cityscapes_eval.getPrediction(cityscapes_eval.args, gt))
        if results is None:
            return None
        return OrderedDict(
            {
                "sem_seg": {
                    "IoU": 100.0 * results["averageScoreClasses"],
                    "iIoU": 100.0 * results["averageScoreInstClasses"],
                    "IoU_sup": 100.0 * results["averageScoreCategories"],
                    "iIoU_sup": 100.0 * results["averageScoreInstCategories"],
                }
            }
        )


def _register_cityscapes_types() -> None:
    from .registry import EVALUATOR_REGISTRY

    def cityscapes_sem_seg(cfg, dataset_name: str, output_folder: Optional[str]) -> CityscapesSemSegEvaluator:
        """The evaluator of ``evaluator_type == "cityscapes_sem_seg"`` datasets."""
        return CityscapesSemSegEvaluator(dataset_name)

    def cityscapes_instance(cfg, dataset_name: str, output_folder: Optional[str]) -> CityscapesInstanceEvaluator:
        """The evaluator of ``evaluator_type == "cityscapes_instance"`` datasets."""
        return CityscapesInstanceEvaluator(dataset_name)

    for name, factory in (("cityscapes_sem_seg", cityscapes_sem_seg), ("cityscapes_instance", cityscapes_instance)):
        if name not in EVALUATOR_REGISTRY:
            EVALUATOR_REGISTRY.register(name)(factory)


_register_cityscapes_types()
