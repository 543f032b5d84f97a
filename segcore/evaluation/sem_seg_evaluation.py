"""Semantic segmentation metrics (mIoU, fwIoU, mACC, pACC), as Detectron2's ``SemSegEvaluator``."""
from __future__ import annotations

import itertools
import json
import logging
import os
from collections import OrderedDict
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from tabulate import tabulate

from segcore.utils.comm import all_gather, is_main_process, synchronize
from segcore.utils.file_io import PathManager

from .evaluator import DatasetEvaluator
from .registry import EVALUATOR_REGISTRY

__all__ = ["SemSegEvaluator", "load_image_into_numpy_array"]


def load_image_into_numpy_array(filename: str, copy: bool = False, dtype: Any = None) -> np.ndarray:
    """Read an image file (through ``PathManager``) into a NumPy array with PIL.

    Args:
        filename: path or URI of the image.
        copy: always return a new array.
        dtype: the array's dtype (default: PIL's, e.g. uint8 for an "L" PNG).

    Returns:
        ndarray (H, W) for single-channel images, (H, W, C) otherwise.
    """
    with PathManager.open(filename, "rb") as f:
        array = np.asarray(Image.open(f), dtype=dtype)
    return array.copy() if copy else array


class SemSegEvaluator(DatasetEvaluator):
    """Evaluate semantic segmentation with a confusion matrix, as Detectron2's ``SemSegEvaluator``.

    For each image the prediction is ``output["sem_seg"].argmax(0)`` (``sem_seg``: float
    (K, H, W) scores at the original image size) and the ground truth is the label image
    ``sem_seg_file_name`` (pixel value = contiguous class id in [0, K), or ``ignore_label``).
    An (K+1) x (K+1) confusion matrix (rows: prediction, columns: ground truth; the extra
    column collects ignored pixels) is accumulated with ``np.bincount`` and summed over
    processes with ``comm.all_gather``.

    Results (``{"sem_seg": {...}}``, percentages):
        ``mIoU`` (mean IoU over classes present in the ground truth), ``fwIoU`` (IoU weighted
        by ground-truth pixel frequency), ``IoU-<class>``, ``mACC`` (mean class recall),
        ``pACC`` (pixel accuracy), ``ACC-<class>``. Classes without ground-truth pixels get
        NaN per-class values and are left out of the means; ignored pixels count nowhere.

    Files written when ``output_dir`` is given: ``sem_seg_predictions.json`` (per image and
    class, a COCO RLE of the predicted mask with its dataset category id) and
    ``sem_seg_evaluation.pth`` (the results).
    """

    def __init__(
        self,
        dataset_name: str,
        distributed: bool = True,
        output_dir: str | None = None,
        *,
        sem_seg_loading_fn: Callable[..., np.ndarray] = load_image_into_numpy_array,
        num_classes: int | None = None,
        ignore_label: int | None = None,
    ):
        """
        Args:
            dataset_name: a dataset registered in ``segcore.data``: its metadata gives
                ``stuff_classes``, ``ignore_label`` and optionally
                ``stuff_dataset_id_to_contiguous_id``; its dicts give ``sem_seg_file_name``
                when the model inputs lack it.
            distributed: gather results from all processes (only the main one returns them).
            output_dir: folder for the prediction json and the results (``None``: none).
            sem_seg_loading_fn: reads a label file: ``fn(path, dtype=int) -> ndarray (H, W)``.
            num_classes: number of classes; default ``len(stuff_classes)``.
            ignore_label: label value to ignore; default the metadata's ``ignore_label``.

        Raises:
            ValueError: ``num_classes`` disagrees with the metadata's ``stuff_classes``, or
                neither gives the number of classes.
        """
        from segcore.data import MetadataCatalog

        self._logger = logging.getLogger(__name__)
        self._dataset_name = dataset_name
        self._distributed = distributed
        self._output_dir = output_dir
        self._cpu_device = torch.device("cpu")
        self.sem_seg_loading_fn = sem_seg_loading_fn
        self._input_file_to_gt_file: dict[str, str] | None = None  # built on first need

        meta = MetadataCatalog.get(dataset_name)
        class_names = getattr(meta, "stuff_classes", None)
        if class_names is not None:
            class_names = list(class_names)
            if num_classes is not None and num_classes != len(class_names):
                raise ValueError(
                    f"SemSegEvaluator for '{dataset_name}': num_classes={num_classes} but the metadata "
                    f"has {len(class_names)} stuff_classes"
                )
        elif num_classes is not None:
            class_names = [str(i) for i in range(num_classes)]
        else:
            raise ValueError(f"Dataset '{dataset_name}' has no stuff_classes in its metadata; pass num_classes")
        self._class_names = class_names
        self._num_classes = len(class_names)
        if ignore_label is None:
            ignore_label = getattr(meta, "ignore_label", None)
            if ignore_label is None:
                raise ValueError(f"Dataset '{dataset_name}' has no ignore_label in its metadata; pass ignore_label")
        self._ignore_label = int(ignore_label)
        c2d = getattr(meta, "stuff_dataset_id_to_contiguous_id", None)
        self._contiguous_id_to_dataset_id = {v: k for k, v in c2d.items()} if c2d else None
        self.reset()

    def reset(self) -> None:
        n = self._num_classes + 1
        self._conf_matrix = np.zeros((n, n), dtype=np.int64)
        self._predictions: list[dict] = []

    def _gt_file_for(self, input: dict) -> str:
        if "sem_seg_file_name" in input:
            return input["sem_seg_file_name"]
        if self._input_file_to_gt_file is None:
            from segcore.data import DatasetCatalog

            self._input_file_to_gt_file = {
                record["file_name"]: record["sem_seg_file_name"]
                for record in DatasetCatalog.get(self._dataset_name)
                if "sem_seg_file_name" in record
            }
        file_name = input.get("file_name")
        if file_name not in self._input_file_to_gt_file:
            raise KeyError(
                f"No ground truth for input '{file_name}': the input has no 'sem_seg_file_name' and dataset "
                f"'{self._dataset_name}' has none for that file_name"
            )
        return self._input_file_to_gt_file[file_name]

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        """Add the confusion counts of each (input, output) pair.

        Raises:
            ValueError: the prediction has another number of classes or another size than the
                ground truth, or the ground truth holds labels outside [0, K) other than ignore.
        """
        n = self._num_classes
        for input, output in zip(inputs, outputs):
            scores = output["sem_seg"]
            if scores.dim() != 3 or scores.shape[0] != n:
                raise ValueError(
                    f"output['sem_seg'] for {input.get('file_name')} has shape {tuple(scores.shape)}; "
                    f"expected ({n}, H, W) for the {n} classes of '{self._dataset_name}'"
                )
            pred = scores.argmax(dim=0).to(self._cpu_device).numpy().astype(np.int64)
            gt_filename = self._gt_file_for(input)
            gt = np.asarray(self.sem_seg_loading_fn(gt_filename, dtype=int)).astype(np.int64)
            if gt.ndim != 2:
                raise ValueError(f"Ground truth {gt_filename} must be a single-channel label image, got shape {gt.shape}")
            if gt.shape != pred.shape:
                raise ValueError(
                    f"Prediction for {input.get('file_name')} is {pred.shape[0]}x{pred.shape[1]} (HxW) but its "
                    f"ground truth {gt_filename} is {gt.shape[0]}x{gt.shape[1]}"
                )
            ignored = gt == self._ignore_label
            invalid = ~ignored & ((gt < 0) | (gt >= n))
            if invalid.any():
                bad = np.unique(gt[invalid])[:10].tolist()
                raise ValueError(
                    f"Ground truth {gt_filename} has labels {bad} outside [0, {n}) that are not the ignore "
                    f"label {self._ignore_label}"
                )
            gt[ignored] = n
            self._conf_matrix += np.bincount(
                (n + 1) * pred.reshape(-1) + gt.reshape(-1), minlength=self._conf_matrix.size
            ).reshape(self._conf_matrix.shape)
            if self._output_dir:
                self._predictions.extend(self.encode_json_sem_seg(pred, input.get("file_name")))

    def evaluate(self) -> OrderedDict | None:
        """Compute the metrics (on the main process; ``None`` on others when distributed)."""
        conf_matrix = self._conf_matrix
        predictions = self._predictions
        if self._distributed:
            synchronize()
            conf_matrix = sum(all_gather(self._conf_matrix))
            predictions = list(itertools.chain(*all_gather(self._predictions)))
            if not is_main_process():
                return None

        if self._output_dir:
            PathManager.mkdirs(self._output_dir)
            with PathManager.open(os.path.join(self._output_dir, "sem_seg_predictions.json"), "w") as f:
                f.write(json.dumps(predictions))

        n = self._num_classes
        acc = np.full(n, np.nan, dtype=float)
        iou = np.full(n, np.nan, dtype=float)
        tp = conf_matrix.diagonal()[:-1].astype(float)
        pos_gt = np.sum(conf_matrix[:-1, :-1], axis=0).astype(float)
        pos_pred = np.sum(conf_matrix[:-1, :-1], axis=1).astype(float)
        total_gt = np.sum(pos_gt)
        class_weights = pos_gt / total_gt if total_gt > 0 else np.zeros(n)
        acc_valid = pos_gt > 0
        acc[acc_valid] = tp[acc_valid] / pos_gt[acc_valid]
        union = pos_gt + pos_pred - tp
        iou_valid = np.logical_and(acc_valid, union > 0)
        iou[iou_valid] = tp[iou_valid] / union[iou_valid]
        macc = np.sum(acc[acc_valid]) / np.sum(acc_valid) if acc_valid.any() else np.nan
        miou = np.sum(iou[iou_valid]) / np.sum(iou_valid) if iou_valid.any() else np.nan
        fiou = np.sum(iou[iou_valid] * class_weights[iou_valid])
        pacc = np.sum(tp) / total_gt if total_gt > 0 else np.nan

        res: dict[str, float] = {"mIoU": 100 * miou, "fwIoU": 100 * fiou}
        for i, name in enumerate(self._class_names):
            res[f"IoU-{name}"] = 100 * iou[i]
        res["mACC"] = 100 * macc
        res["pACC"] = 100 * pacc
        for i, name in enumerate(self._class_names):
            res[f"ACC-{name}"] = 100 * acc[i]
        res = {k: float(v) for k, v in res.items()}

        if self._output_dir:
            with PathManager.open(os.path.join(self._output_dir, "sem_seg_evaluation.pth"), "wb") as f:
                torch.save(res, f)
        self._log_table(res, iou, acc)
        return OrderedDict({"sem_seg": res})

    def _log_table(self, res: dict[str, float], iou: np.ndarray, acc: np.ndarray) -> None:
        rows = [(name, 100 * iou[i], 100 * acc[i]) for i, name in enumerate(self._class_names)]
        table = tabulate(rows, headers=["class", "IoU", "ACC"], tablefmt="pipe", floatfmt=".3f", numalign="left")
        self._logger.info(f"Per-class semantic segmentation results on '{self._dataset_name}':\n" + table)
        summary = ", ".join(f"{k}: {res[k]:.3f}" for k in ("mIoU", "fwIoU", "mACC", "pACC"))
        self._logger.info(f"Semantic segmentation results on '{self._dataset_name}': {summary}")

    def encode_json_sem_seg(self, sem_seg: np.ndarray, input_file_name: str | None) -> list[dict]:
        """COCO-RLE records ``{"file_name", "category_id", "segmentation"}``, one per predicted class.

        Args:
            sem_seg: int array (H, W) of contiguous class ids.
            input_file_name: the image's file name.
        """
        import pycocotools.mask as mask_util

        json_list = []
        for label in np.unique(sem_seg):
            label = int(label)
            if self._contiguous_id_to_dataset_id is not None:
                if label not in self._contiguous_id_to_dataset_id:
                    raise ValueError(
                        f"Label {label} is not a contiguous id of dataset '{self._dataset_name}' "
                        "(stuff_dataset_id_to_contiguous_id)"
                    )
                dataset_id = self._contiguous_id_to_dataset_id[label]
            else:
                dataset_id = label
            mask = (sem_seg == label).astype(np.uint8)
            mask_rle = mask_util.encode(np.array(mask[:, :, None], order="F"))[0]
            mask_rle["counts"] = mask_rle["counts"].decode("utf-8")
            json_list.append({"file_name": input_file_name, "category_id": dataset_id, "segmentation": mask_rle})
        return json_list


@EVALUATOR_REGISTRY.register("sem_seg")
def sem_seg_evaluator(cfg, dataset_name: str, output_folder: str | None) -> SemSegEvaluator:
    """The evaluator of ``evaluator_type == "sem_seg"`` datasets (ADE20K, COCO-Stuff, ...)."""
    return SemSegEvaluator(dataset_name, distributed=True, output_dir=output_folder)
