"""Reading images and annotations for the data pipeline (as in Detectron2's ``detectron2/data/detection_utils.py``).

Images are read with PIL (EXIF orientation applied as Detectron2 does), returned as writable
numpy arrays in the channel order the model expects (``INPUT.FORMAT``). Every failure names the
file it concerns.
"""
from __future__ import annotations

import logging
import struct
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

from segcore.structures import BitMasks, Boxes, BoxMode, Instances
from segcore.structures.masks import PolygonMasks, polygons_to_bitmask, rle_to_bitmask
from segcore.utils.file_io import PathManager

from . import transforms as T

__all__ = [
    "ImageReadError",
    "LabelOutOfRangeError",
    "SizeMismatchError",
    "annotations_to_instances",
    "build_augmentation",
    "check_class_ids",
    "check_image_size",
    "check_sem_seg_size",
    "convert_PIL_to_numpy",
    "filter_empty_instances",
    "read_image",
    "read_pan_seg",
    "read_sem_seg",
    "segmentation_to_bitmask",
    "transform_instance_annotations",
]

# https://en.wikipedia.org/wiki/YUV#SDTV_with_BT.601
_M_RGB2YUV = [[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]]

_EXIF_ORIENTATION = 0x0112
#: EXIF orientation -> the PIL transpose that displays the image upright (as Detectron2's
#: ``_apply_exif_orientation``; orientation 1 and unknown values leave the image as it is)
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

#: image formats read_image accepts; None keeps the file's own mode
SUPPORTED_IMAGE_FORMATS = ("RGB", "BGR", "L", "YUV-BT.601")

#: PIL modes of 16-bit single-channel images (16-bit grayscale PNG / TIFF)
_16BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
#: PIL modes whose pixels PIL would saturate, not scale, when converting to 8 bits
_HIGH_BIT_DEPTH_MODES = _16BIT_MODES + ("I", "F")
#: PIL modes whose conversion to RGB keeps every colour exactly (panoptic PNGs must be read losslessly)
_LOSSLESS_RGB_MODES = ("RGB", "RGBA", "RGBX", "P", "PA", "L", "LA", "1")

#: what decoding a corrupt file can raise inside Pillow (besides OSError and its subclasses):
#: malformed chunks (SyntaxError), bad header values (ValueError, struct.error), truncated data
#: (EOFError, IndexError), unusable tags (TypeError, KeyError) and a header declaring more than
#: twice ``Image.MAX_IMAGE_PIXELS`` pixels (DecompressionBombError).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, TypeError, KeyError,
                  ZeroDivisionError, Image.DecompressionBombError)


class ImageReadError(OSError):
    """An image or annotation file exists but cannot be decoded."""


class SizeMismatchError(ValueError):
    """An image's size differs from the size its annotation declares."""


class LabelOutOfRangeError(ValueError):
    """An annotation holds a class id outside ``[0, num_classes)`` (other than the ignore label)."""


def _to_8bit(image: Image.Image) -> Image.Image:
    """An "L" image from a high-bit-depth single-channel one ("I;16*", "I", "F").

    16-bit images are scaled as OpenCV and libpng do (the high byte: ``value >> 8``); PIL's own
    conversion would saturate every value above 255. "I" / "F" images are taken as 8-bit when
    their values lie in [0, 255] and as 16-bit when they lie in [0, 65535].

    Raises:
        ValueError: values outside [0, 65535] (or NaN), which have no 8-bit meaning.
    """
    arr = np.asarray(image)
    if image.mode in _16BIT_MODES:
        return Image.fromarray((arr.astype(np.uint32) >> 8).astype(np.uint8), "L")
    arr = arr.astype(np.float64)
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if not (lo >= 0 and hi <= 65535):  # also catches NaN
        raise ValueError(f"PIL mode '{image.mode}' pixel values span [{lo}, {hi}], outside [0, 65535]: "
                         "there is no 8-bit image to make of them")
    if hi > 255:
        arr = np.floor(arr / 256)
    return Image.fromarray(np.floor(arr).astype(np.uint8), "L")


def convert_PIL_to_numpy(image: Image.Image, format: Optional[str]) -> np.ndarray:
    """Convert a PIL image to a writable numpy array in ``format`` (Detectron2 ``convert_PIL_to_numpy``).

    Args:
        image: a PIL image of any mode. Alpha is dropped, palette / CMYK / YCbCr images are
            converted by PIL; 16-bit and 32-bit single-channel images are first scaled to 8 bits
            (see :func:`_to_8bit`).
        format: "RGB", "BGR", "L", "YUV-BT.601", or None to keep the image's own mode.

    Returns:
        (H, W, 3) uint8 for RGB/BGR, (H, W, 1) uint8 for "L", (H, W, 3) float64 for
        "YUV-BT.601"; with ``format=None`` whatever ``np.array`` gives for the mode
        ((H, W) for single-channel images). The array owns its data and is writable.

    Raises:
        ValueError: an unsupported format, a mode PIL cannot convert to it, or a high-bit-depth
            image whose values have no 8-bit meaning.
    """
    if format is not None:
        if format not in SUPPORTED_IMAGE_FORMATS:
            raise ValueError(f"Unsupported image format '{format}'; use one of {SUPPORTED_IMAGE_FORMATS}")
        if image.mode in _HIGH_BIT_DEPTH_MODES:
            image = _to_8bit(image)
        # PIL only knows RGB; BGR and YUV are made from it below
        conversion_format = "RGB" if format in ("BGR", "YUV-BT.601") else format
        image = image.convert(conversion_format)
    # np.array copies: np.asarray of a PIL image is read-only (torch warns on such arrays)
    arr = np.array(image)
    if format == "L":
        arr = np.expand_dims(arr, -1)
    elif format == "BGR":
        arr = arr[:, :, ::-1]
    elif format == "YUV-BT.601":
        arr = np.dot(arr / 255.0, np.array(_M_RGB2YUV).T)
    return arr


def _apply_exif_orientation(image: Image.Image, file_name: str) -> Image.Image:
    """Turn the image upright as its EXIF orientation tag (0x0112) says (Detectron2's
    ``_apply_exif_orientation``: the same transposes; unreadable EXIF data is ignored)."""
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION)
    except _DECODE_ERRORS as e:  # a corrupt EXIF block does not make the pixels unreadable
        logging.getLogger(__name__).warning("Ignoring the unreadable EXIF data of '%s': %s", file_name, e)
        return image
    method = _EXIF_TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


def _open_image(file_name: str, what: str) -> Image.Image:
    """Open and fully decode ``file_name`` with PIL, applying EXIF orientation.

    Raises:
        FileNotFoundError: the file does not exist (named in the message).
        ImageReadError: it cannot be opened or decoded (named in the message, with the reason).
    """
    try:
        with PathManager.open(file_name, "rb") as f:
            image = Image.open(f)
            image.load()
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{what} file not found: '{file_name}'") from e
    except IsADirectoryError as e:
        raise ImageReadError(f"Cannot read {what} file '{file_name}': it is a directory") from e
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"Cannot read {what} file '{file_name}': its header declares too many pixels "
                             f"(corrupt, or larger than PIL.Image.MAX_IMAGE_PIXELS allows): {e}") from e
    except _DECODE_ERRORS as e:
        raise ImageReadError(f"Cannot read {what} file '{file_name}' (corrupt or not an image): "
                             f"{type(e).__name__}: {e}") from e
    if image.width == 0 or image.height == 0:
        raise ImageReadError(f"Cannot read {what} file '{file_name}': it is empty ({image.width}x{image.height} pixels)")
    return _apply_exif_orientation(image, file_name)


def read_image(file_name: str, format: Optional[str] = None) -> np.ndarray:
    """Read an image file into a numpy array (Detectron2 ``read_image``).

    The EXIF orientation is applied (as Detectron2 does), then the image is converted to
    ``format`` (see :func:`convert_PIL_to_numpy`: grayscale, palette, RGBA, CMYK and 16-bit
    images all give 8-bit RGB/BGR/L).

    Args:
        file_name: a path PathManager can open (local, http(s)://, detectron2://).
        format: "RGB", "BGR", "L" (or "YUV-BT.601"); None keeps the file's own mode.

    Returns:
        (H, W, C) uint8 array (C = 3, or 1 for "L"), writable; see :func:`convert_PIL_to_numpy`.

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        ImageReadError: the file cannot be decoded or converted to ``format`` (the message names it).
        ValueError: an unsupported format.
    """
    if format is not None and format not in SUPPORTED_IMAGE_FORMATS:
        raise ValueError(f"Unsupported image format '{format}' for '{file_name}'; use one of {SUPPORTED_IMAGE_FORMATS}")
    image = _open_image(file_name, "image")
    try:
        return convert_PIL_to_numpy(image, format)
    except ValueError as e:
        raise ImageReadError(f"Cannot convert image file '{file_name}' (PIL mode '{image.mode}') to {format}: {e}") from e


def read_sem_seg(file_name: str) -> np.ndarray:
    """Read a semantic-segmentation label image (one class id per pixel).

    Single-channel images are read as they are (mode "L" -> uint8, "I;16" -> uint16, "P" ->
    the palette indices, "I" -> int32, "1" -> uint8 0/1), EXIF orientation applied.

    Returns:
        (H, W) integer array of class ids (native byte order, writable).

    Raises:
        FileNotFoundError / ImageReadError: the file is missing or cannot be decoded.
        ValueError: the file is not a single-channel label image (e.g. an RGB colour map or a
            float image).
    """
    image = _open_image(file_name, "semantic segmentation")
    arr = np.array(image)
    if arr.dtype == np.bool_:  # mode "1": a two-class label map
        arr = arr.astype(np.uint8)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"Semantic segmentation file '{file_name}' must be a single-channel image of class ids; "
            f"got PIL mode '{image.mode}' (array shape {arr.shape}, dtype {arr.dtype})"
        )
    if not arr.dtype.isnative:  # e.g. "I;16B": torch does not take big-endian arrays
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def read_pan_seg(file_name: str) -> np.ndarray:
    """Read a COCO panoptic PNG: segment ids as colours (id = R + 256 G + 256^2 B).

    The colours must be read exactly, so only modes whose conversion to RGB is lossless are
    accepted: RGB(A/X), palette ("P", "PA"), grayscale ("L", "LA", "1"; every colour is grey).

    Returns:
        (H, W, 3) uint8 RGB array (writable); :func:`segcore.data.panoptic_utils.rgb2id` gives the ids.

    Raises:
        FileNotFoundError / ImageReadError: the file is missing or cannot be decoded.
        ValueError: a mode whose colours cannot be read exactly (16-bit or float grayscale,
            CMYK, YCbCr from a JPEG, ...); the message names the file.
    """
    image = _open_image(file_name, "panoptic segmentation")
    if image.mode not in _LOSSLESS_RGB_MODES:
        raise ValueError(
            f"Panoptic segmentation file '{file_name}' has PIL mode '{image.mode}'; a panoptic PNG holds segment "
            f"ids as 8-bit RGB colours (modes {', '.join(_LOSSLESS_RGB_MODES)})"
        )
    return np.array(image.convert("RGB"))


def check_class_ids(
    class_ids: Union[np.ndarray, Iterable[int]],
    num_classes: int,
    file_name: str,
    *,
    what: str = "labels",
    ignore_label: Optional[int] = None,
) -> None:
    """Check that every class id lies in ``[0, num_classes)``, as the model's classifier needs.

    An id equal to ``num_classes`` would train as "no object", a larger one fails deep in the
    matcher: both are annotation errors, reported here with the file and the bad values (as
    :class:`segcore.evaluation.SemSegEvaluator` reports them for evaluation).

    Args:
        class_ids: a label map (any shape) or a sequence of contiguous category ids.
        num_classes: K (``MODEL.SEM_SEG_HEAD.NUM_CLASSES``).
        file_name: the annotation file (or the image whose annotations these are), named in the error.
        what: what the ids are, for the message (e.g. "segment category ids").
        ignore_label: a value that is allowed anyway (the label map's ignore label), or None.

    Raises:
        LabelOutOfRangeError: ids outside ``[0, num_classes)`` other than ``ignore_label``,
            or ids that are not integers (the message lists up to 10 of them).
    """
    ids = np.asarray(class_ids if isinstance(class_ids, np.ndarray) else list(class_ids))
    if ids.size == 0:
        return
    if not (np.issubdtype(ids.dtype, np.integer) or ids.dtype == np.bool_):
        raise LabelOutOfRangeError(
            f"'{file_name}' has {what} that are not integer class ids: {ids.ravel()[:10].tolist()}"
        )
    invalid = (ids < 0) | (ids >= num_classes)
    if ignore_label is not None:
        invalid &= ids != ignore_label
    if invalid.any():
        bad = np.unique(ids[invalid])[:10].tolist()
        ignore = "" if ignore_label is None else f" that are not the ignore label {ignore_label}"
        raise LabelOutOfRangeError(
            f"'{file_name}' has {what} {bad} outside [0, {num_classes}){ignore} "
            f"(MODEL.SEM_SEG_HEAD.NUM_CLASSES = {num_classes})"
        )


def check_image_size(dataset_dict: dict, image: np.ndarray) -> None:
    """Check the image against the "width"/"height" of its dataset dict, then fill them in.

    As in Detectron2: when the dict has "width" or "height", both must match the image;
    missing keys are set from the image (so later steps, e.g. aspect-ratio grouping, have them).

    Args:
        dataset_dict: a Detectron2-format dict with "file_name".
        image: (H, W, ...) array read from ``dataset_dict["file_name"]``.

    Raises:
        SizeMismatchError: the sizes differ (the message names the file and both sizes).
    """
    if "width" in dataset_dict or "height" in dataset_dict:
        image_wh = (image.shape[1], image.shape[0])
        expected_wh = (dataset_dict.get("width", image.shape[1]), dataset_dict.get("height", image.shape[0]))
        if image_wh != expected_wh:
            raise SizeMismatchError(
                f"Mismatched image shape for '{dataset_dict.get('file_name', '<unknown file>')}': "
                f"got (width, height) = {image_wh}, the annotation says {expected_wh}. "
                "Please check the width/height in your annotation."
            )
    if "width" not in dataset_dict:
        dataset_dict["width"] = image.shape[1]
    if "height" not in dataset_dict:
        dataset_dict["height"] = image.shape[0]


def check_sem_seg_size(image: np.ndarray, sem_seg: np.ndarray, image_file: str, sem_seg_file: str) -> None:
    """Check that a label map has the image's height and width.

    Args:
        image: (H, W, ...) image array.
        sem_seg: (H', W') label array.
        image_file, sem_seg_file: paths used in the error message.

    Raises:
        SizeMismatchError: (H', W') != (H, W) (the message names both files and sizes).
    """
    if tuple(sem_seg.shape[:2]) != tuple(image.shape[:2]):
        raise SizeMismatchError(
            f"Semantic segmentation '{sem_seg_file}' has size (H, W) = {tuple(sem_seg.shape[:2])} but its image "
            f"'{image_file}' has size {tuple(image.shape[:2])}; an annotation must have its image's size."
        )


def build_augmentation(cfg, is_train: bool) -> List[T.Augmentation]:
    """The default augmentations of a config (Detectron2 ``build_augmentation``).

    Training: ``ResizeShortestEdge(INPUT.MIN_SIZE_TRAIN, INPUT.MAX_SIZE_TRAIN,
    INPUT.MIN_SIZE_TRAIN_SAMPLING)`` then ``RandomFlip`` as ``INPUT.RANDOM_FLIP`` says
    ("horizontal", "vertical" or "none"). Inference: ``ResizeShortestEdge(INPUT.MIN_SIZE_TEST,
    INPUT.MAX_SIZE_TEST, "choice")`` (MIN_SIZE_TEST 0 disables resizing).

    Raises:
        ValueError: an unknown ``INPUT.RANDOM_FLIP``.
    """
    if is_train:
        min_size = cfg.INPUT.MIN_SIZE_TRAIN
        max_size = cfg.INPUT.MAX_SIZE_TRAIN
        sample_style = cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING
    else:
        min_size = cfg.INPUT.MIN_SIZE_TEST
        max_size = cfg.INPUT.MAX_SIZE_TEST
        sample_style = "choice"
    augmentation: List[T.Augmentation] = [T.ResizeShortestEdge(min_size, max_size, sample_style)]
    if is_train:
        flip = cfg.INPUT.RANDOM_FLIP
        if flip not in ("none", "horizontal", "vertical"):
            raise ValueError(f"INPUT.RANDOM_FLIP must be 'none', 'horizontal' or 'vertical'; got '{flip}'")
        if flip != "none":
            augmentation.append(T.RandomFlip(horizontal=flip == "horizontal", vertical=flip == "vertical"))
    logging.getLogger(__name__).debug("Augmentations (%s): %s", "train" if is_train else "test", augmentation)
    return augmentation


def segmentation_to_bitmask(segm, height: int, width: int, where: str = "") -> np.ndarray:
    """Rasterize one instance's "segmentation" annotation.

    Args:
        segm: polygons (a list of flat (x0, y0, x1, y1, ...) lists or arrays, in pixels), a COCO
            RLE dict (compressed or not), or an (H, W) array (non-zero inside).
        height, width: the image size in pixels; polygons are drawn at this size.
        where: a description of the annotation (file name) for error messages.

    Returns:
        (height, width) bool ndarray for polygons and RLE; an array input is returned as it is
        (as Detectron2 does), after its shape is checked.

    Raises:
        ValueError: an unsupported type, an array that is not 2-D or an RLE/array whose size is
            not (height, width).
    """
    if isinstance(segm, list):
        return polygons_to_bitmask(segm, height, width)
    if isinstance(segm, dict):
        mask = rle_to_bitmask(segm)
    elif isinstance(segm, np.ndarray):
        if segm.ndim != 2:
            raise ValueError(f"Expect a segmentation mask of 2 dimensions{where}; got shape {segm.shape}")
        mask = segm
    else:
        raise ValueError(
            f"Cannot convert segmentation of type '{type(segm).__name__}'{where} to a bitmask! Supported types "
            "are: polygons as list[list[float] or ndarray], COCO-style RLE as a dict, or a binary segmentation "
            "mask in a 2D numpy array of shape HxW."
        )
    if tuple(mask.shape) != (height, width):
        raise ValueError(f"Segmentation mask{where} has size {tuple(mask.shape)}, expected {(height, width)}")
    return mask


def transform_instance_annotations(
    annotation: dict,
    transforms: Union[T.TransformList, Sequence[T.Transform]],
    image_size: Tuple[int, int],
) -> dict:
    """Apply geometric transforms to one instance annotation (Detectron2 ``transform_instance_annotations``).

    The box is converted to XYXY_ABS, transformed (its corners' bounding box), clipped to
    [0, W] x [0, H]. Polygons are transformed as polygons (a crop clips them and may drop
    some); an RLE is decoded and transformed as a label map, giving an (H, W) uint8 array.

    Args:
        annotation: a Detectron2 instance annotation with "bbox" and "bbox_mode", optionally
            "segmentation"; modified in place.
        transforms: the transforms applied to the image.
        image_size: (H, W) of the transformed image in pixels.

    Returns:
        ``annotation`` with "bbox" (float ndarray (4,), XYXY_ABS), "bbox_mode" = XYXY_ABS and the
        transformed "segmentation" (list of flat float64 arrays, or an (H, W) uint8 array).

    Raises:
        KeyError: no "bbox" or "bbox_mode".
        ValueError: an unsupported segmentation type, or an RLE whose transformed size is not
            ``image_size``.
        NotImplementedError: the annotation has "keypoints" (keypoints are not supported).
    """
    if isinstance(transforms, (tuple, list)):
        transforms = T.TransformList(list(transforms))
    if "keypoints" in annotation:
        raise NotImplementedError(
            "transform_instance_annotations does not support 'keypoints'; remove them from the annotation first"
        )
    for key in ("bbox", "bbox_mode"):
        if key not in annotation:
            raise KeyError(f"Instance annotation has no '{key}' (keys: {sorted(annotation)})")
    bbox = BoxMode.convert(list(annotation["bbox"]), annotation["bbox_mode"], BoxMode.XYXY_ABS)
    # transform, then clip to the image (as Detectron2)
    bbox = transforms.apply_box(np.array([bbox], dtype=np.float64))[0].clip(min=0)
    annotation["bbox"] = np.minimum(bbox, list(image_size + image_size)[::-1])
    annotation["bbox_mode"] = BoxMode.XYXY_ABS

    if "segmentation" in annotation:
        segm = annotation["segmentation"]
        if isinstance(segm, list):
            # float copies: transforms work in place and must not truncate integer coordinates
            polygons = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in segm]
            annotation["segmentation"] = [p.reshape(-1) for p in transforms.apply_polygons(polygons)]
        elif isinstance(segm, dict):
            mask = rle_to_bitmask(segm).astype(np.uint8)
            # a padding transform fills label maps with its seg_pad_value (255 for FixedSizeCrop):
            # only the pixels that stay exactly 1 belong to the instance
            mask = (transforms.apply_segmentation(mask) == 1).astype(np.uint8)
            if tuple(mask.shape[:2]) != tuple(image_size):
                raise ValueError(
                    f"An RLE mask of size {tuple(segm['size'])} became {tuple(mask.shape[:2])} after the "
                    f"transforms, but the image is {tuple(image_size)}"
                )
            annotation["segmentation"] = mask
        else:
            raise ValueError(
                f"Cannot transform segmentation of type '{type(segm).__name__}'! Supported types are: polygons "
                "as list[list[float] or ndarray], COCO-style RLE as a dict."
            )
    return annotation


def annotations_to_instances(annos: List[dict], image_size: Tuple[int, int], mask_format: str = "polygon") -> Instances:
    """Build ground-truth Instances from annotations (Detectron2 ``annotations_to_instances``).

    Args:
        annos: instance annotations of one image (after :func:`transform_instance_annotations`),
            with "bbox", "bbox_mode", "category_id" and optionally "segmentation".
        image_size: (H, W) in pixels.
        mask_format: "polygon" (PolygonMasks; needs polygon segmentations) or "bitmask"
            (BitMasks; polygons, RLE dicts and (H, W) arrays are accepted).

    Returns:
        Instances with "gt_boxes" (Boxes, (N, 4) XYXY), "gt_classes" (int64 (N,)) and, when the
        annotations have "segmentation", "gt_masks" (PolygonMasks, or BitMasks (N, H, W) bool).
        Boxes are not clipped here.

    Raises:
        ValueError: an unknown ``mask_format``, or segmentations the chosen format cannot hold.
    """
    if mask_format not in ("polygon", "bitmask"):
        raise ValueError(f"mask_format must be 'polygon' or 'bitmask' (INPUT.MASK_FORMAT); got '{mask_format}'")
    boxes = (
        np.stack([np.asarray(BoxMode.convert(list(obj["bbox"]), obj["bbox_mode"], BoxMode.XYXY_ABS)) for obj in annos])
        if len(annos)
        else np.zeros((0, 4))
    )
    target = Instances(image_size)
    target.gt_boxes = Boxes(boxes)
    target.gt_classes = torch.tensor([int(obj["category_id"]) for obj in annos], dtype=torch.int64)

    if len(annos) and "segmentation" in annos[0]:
        segms = [obj["segmentation"] for obj in annos]
        if mask_format == "polygon":
            try:
                masks = PolygonMasks(segms)
            except ValueError as e:
                raise ValueError(
                    "Failed to use mask_format=='polygon' from the given annotations (RLE or mask arrays need "
                    "mask_format 'bitmask')"
                ) from e
        else:
            bitmasks = [
                segmentation_to_bitmask(segm, image_size[0], image_size[1], f" (annotation {i})")
                for i, segm in enumerate(segms)
            ]
            masks = BitMasks(torch.stack([torch.from_numpy(np.ascontiguousarray(x)) for x in bitmasks]))
        target.gt_masks = masks
    return target


def filter_empty_instances(
    instances: Instances,
    by_box: bool = True,
    by_mask: bool = True,
    box_threshold: float = 1e-5,
    return_mask: bool = False,
):
    """Remove instances with an empty box or mask (Detectron2 ``filter_empty_instances``).

    Args:
        instances: with "gt_boxes" (needed when ``by_box``) and optionally "gt_masks".
        by_box: drop instances whose box width or height is <= ``box_threshold`` pixels.
        by_mask: drop instances whose mask is empty (when "gt_masks" is present).
        box_threshold: in pixels.
        return_mask: also return the (N,) bool tensor of kept instances.

    Returns:
        The kept Instances (and the mask if ``return_mask``).

    Raises:
        ValueError: both ``by_box`` and ``by_mask`` are False.
    """
    if not (by_box or by_mask):
        raise ValueError("filter_empty_instances needs by_box or by_mask")
    r = []
    if by_box:
        r.append(instances.gt_boxes.nonempty(threshold=box_threshold))
    if instances.has("gt_masks") and by_mask:
        r.append(instances.gt_masks.nonempty())
    if not r:  # by mask only, and no masks: nothing to filter
        return (instances, torch.ones(len(instances), dtype=torch.bool)) if return_mask else instances
    m = r[0]
    for x in r[1:]:
        m = m & x
    if return_mask:
        return instances[m], m
    return instances[m]

