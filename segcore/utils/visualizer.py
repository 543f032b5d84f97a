"""Drawing semantic, panoptic and instance predictions on an image.

The public names and behaviour follow Detectron2's ``detectron2/utils/visualizer.py``
(``Visualizer``, ``VisImage``, ``ColorMode``, ``draw_sem_seg``, ``draw_panoptic_seg``,
``draw_instance_predictions``, ``overlay_instances``, ``draw_binary_mask``, ``draw_text``);
rendering is done with OpenCV on a uint8 RGB canvas instead of matplotlib, which is faster
and gives pixel-exact, testable output:

* a region is drawn by alpha-blending its colour into the image,
  ``out = (1 - alpha) * image + alpha * color``, and outlining it;
* a text label is drawn on a semi-transparent black box, centred at the point of the region
  farthest from its border (so it is always inside the region, even for non-convex shapes);
* semantic maps also get a legend in the top-right corner listing the classes present.

Coordinates given to the public methods (boxes, text positions) are in input-image pixels;
the output canvas is the input scaled by ``scale``.
"""
from __future__ import annotations

import colorsys
import types
from enum import Enum, unique
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .colormap import class_color, random_color

__all__ = ["ColorMode", "VisImage", "Visualizer"]

_OFF_WHITE = (255.0, 255.0, 240.0)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
# Opacity of the black box behind text.
_TEXT_BACKGROUND_ALPHA = 0.6
# Text is lightened (towards white) until its luma (ITU-R BT.601, 0..255) is at least this.
_MIN_TEXT_LUMA = 150.0
# Every connected component at least this large (output pixels) gets its own label; smaller
# ones only when they are the largest component of their mask (as in Detectron2).
_LARGE_MASK_AREA = 120_000
# Default text height in output pixels: sqrt(image area) / this, at least _MIN_FONT_PX.
_FONT_SIZE_DIVISOR = 50.0
_MIN_FONT_PX = 10.0
# Norm of the random offset added to a class colour (0..255 units) to tell instances apart.
_JITTER_NORM = 0.35 * 255
# Opacity of instance masks per colour mode (as in Detectron2).
_INSTANCE_ALPHA = {"IMAGE": 0.5, "SEGMENTATION": 0.8, "IMAGE_BW": 0.3}


@unique
class ColorMode(Enum):
    """How :class:`Visualizer` colours instances (Detectron2's ``ColorMode``).

    IMAGE: a distinct palette colour per instance.
    SEGMENTATION: instances of a class get similar colours (the class colour, jittered) and are
        drawn more opaquely.
    IMAGE_BW: like IMAGE, but the pixels not covered by any drawn mask are turned grey.
    """

    IMAGE = 0
    SEGMENTATION = 1
    IMAGE_BW = 2


class VisImage:
    """The canvas being drawn on: an RGB uint8 image of the input size times ``scale``.

    Args:
        img: (H, W, 3) RGB image, uint8 (or float in 0..255).
        scale: output size factor; the canvas is ``round(H * scale) x round(W * scale)``.
    """

    def __init__(self, img: np.ndarray, scale: float = 1.0):
        if scale <= 0:
            raise ValueError(f"VisImage scale must be positive, got {scale}")
        self.scale = float(scale)
        self.height, self.width = img.shape[:2]
        self.canvas = self._resize(img)

    def _resize(self, img: np.ndarray) -> np.ndarray:
        img = np.clip(np.asarray(img), 0, 255).astype(np.uint8)
        if self.scale != 1.0:
            size = (max(1, round(self.width * self.scale)), max(1, round(self.height * self.scale)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(img)

    def reset_image(self, img: np.ndarray) -> None:
        """Replace the canvas content with ``img`` ((H, W, 3) RGB, the input size)."""
        self.canvas = self._resize(img)

    def get_image(self) -> np.ndarray:
        """The drawing: a copy, (round(H * scale), round(W * scale), 3) uint8 RGB."""
        return self.canvas.copy()

    def save(self, filepath: str) -> None:
        """Write the drawing to an image file; the format follows the extension (.png, .jpg, ...).

        Raises:
            OSError: OpenCV cannot write the file (unknown extension, missing folder, no permission).
        """
        try:
            ok = cv2.imwrite(filepath, cv2.cvtColor(self.canvas, cv2.COLOR_RGB2BGR))
        except cv2.error as e:
            raise OSError(f"Cannot write image {filepath}: {e}") from e
        if not ok:
            raise OSError(
                f"Cannot write image {filepath}: the folder must exist and the extension must be an "
                "image format OpenCV writes (.png, .jpg, .bmp, .tif, .webp)"
            )


def _to_numpy(x) -> np.ndarray:
    """A torch tensor (any device) or array-like as a NumPy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _field(instances, name: str):
    """``instances.<name>`` if the Instances-like object has that field, else None."""
    if hasattr(instances, "has"):
        return instances.get(name) if instances.has(name) else None
    return getattr(instances, name, None)


def _change_color_brightness(color: Sequence[float], brightness_factor: float) -> np.ndarray:
    """Lighten (factor > 0) or darken (factor < 0) an RGB 0..255 colour in HLS space.

    As Detectron2's ``Visualizer._change_color_brightness``: lightness l becomes l * (1 + factor),
    clipped to [0, 1]. ``brightness_factor`` must be in [-1, 1].
    """
    if not -1.0 <= brightness_factor <= 1.0:
        raise ValueError(f"brightness_factor must be in [-1, 1], got {brightness_factor}")
    r, g, b = (float(c) / 255.0 for c in color)
    h, l, s = colorsys.rgb_to_hls(r, g, b)
    l = min(max(l * (1.0 + brightness_factor), 0.0), 1.0)
    return np.asarray(colorsys.hls_to_rgb(h, l, s), dtype=np.float32) * 255.0


def _readable_on_black(color: Sequence[float]) -> Tuple[int, int, int]:
    """``color`` mixed with white until its luma reaches _MIN_TEXT_LUMA, to read on a dark box."""
    c = np.asarray(color, dtype=np.float32)
    luma = float(c @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32))
    if luma < _MIN_TEXT_LUMA:
        c = c + (255.0 - c) * ((_MIN_TEXT_LUMA - luma) / (255.0 - luma))
    return tuple(int(round(v)) for v in np.clip(c, 0, 255))


def _create_text_labels(classes, scores, class_names) -> Optional[List[str]]:
    """Labels "name" or "name 87%" per instance (as Detectron2's ``_create_text_labels``).

    Args:
        classes: (N,) int class indices, or None.
        scores: (N,) float scores in [0, 1], or None.
        class_names: names indexed by class, or None (the index is printed instead).
    """
    labels = None
    if classes is not None:
        labels = []
        for c in classes:
            c = int(c)
            labels.append(class_names[c] if class_names is not None and 0 <= c < len(class_names) else str(c))
    if scores is not None:
        if labels is None:
            labels = [f"{float(s) * 100:.0f}%" for s in scores]
        else:
            labels = [f"{l} {float(s) * 100:.0f}%" for l, s in zip(labels, scores)]
    return labels


class Visualizer:
    """Draw predictions on an image (Detectron2's ``Visualizer``, rendered with OpenCV).

    Drawing calls accumulate on ``self.output`` and return it.

    Args:
        img_rgb: (H, W, 3) RGB image, uint8 or float in 0..255 (or (H, W) greyscale).
        metadata: dataset metadata (e.g. ``MetadataCatalog.get(name)``); attributes used when
            present: ``stuff_classes``, ``stuff_colors``, ``thing_classes``, ``thing_colors``
            (colours as RGB 0..255 triples), ``ignore_label``, ``label_divisor``,
            ``thing_dataset_id_to_contiguous_id``. Without it, classes are named by their index
            and coloured from :func:`segcore.utils.colormap.colormap`.
        scale: output size factor.
        instance_mode: a :class:`ColorMode`.
        seed: seed of the generator for random instance colours and colour jitter (drawings are
            reproducible).

    Raises:
        ValueError: ``img_rgb`` is not (H, W, 3) or (H, W).
    """

    def __init__(self, img_rgb, metadata=None, scale: float = 1.0,
                 instance_mode: ColorMode = ColorMode.IMAGE, *, seed: int = 0):
        img = _to_numpy(img_rgb)
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"Visualizer expects an (H, W, 3) RGB image, got shape {tuple(img.shape)}")
        self.img = np.clip(img, 0, 255).astype(np.uint8)
        self.metadata = metadata if metadata is not None else types.SimpleNamespace()
        self.output = VisImage(self.img, scale=scale)
        self._instance_mode = instance_mode
        self._rng = np.random.default_rng(seed)
        out_h, out_w = self.output.canvas.shape[:2]
        self._default_font_px = max(np.sqrt(out_h * out_w) / _FONT_SIZE_DIVISOR, _MIN_FONT_PX)
        self._line_width = max(1, int(round(self._default_font_px / 14)))

    # ------------------------------------------------------------------ metadata
    def _meta(self, name: str):
        return getattr(self.metadata, name, None)

    def _stuff_name_color(self, category: int) -> Tuple[str, np.ndarray]:
        return self._lookup(category, self._meta("stuff_classes"), self._meta("stuff_colors"))

    def _thing_name_color(self, category: int) -> Tuple[str, np.ndarray]:
        return self._lookup(category, self._meta("thing_classes"), self._meta("thing_colors"))

    @staticmethod
    def _lookup(category: int, names, colors) -> Tuple[str, np.ndarray]:
        name = names[category] if names is not None and 0 <= category < len(names) else str(category)
        if colors is not None and 0 <= category < len(colors):
            color = np.asarray(colors[category], dtype=np.float32)
        else:
            color = class_color(category)
        return name, color

    def _segment_name_color(self, category: int, isthing: bool) -> Tuple[str, np.ndarray]:
        """Name and colour of a panoptic segment's class.

        Two metadata conventions exist: Detectron2's, where thing category ids index
        ``thing_classes`` and stuff ids index ``stuff_classes``; and MaskFormer's, where
        ``stuff_classes`` lists every class (things included) and ``category_id`` indexes it for
        all segments. The latter is recognised by ``stuff_classes`` containing all thing names.
        """
        stuff, things = self._meta("stuff_classes"), self._meta("thing_classes")
        unified = stuff is not None and (things is None or set(things) <= set(stuff))
        if isthing and not unified:
            return self._thing_name_color(category)
        return self._stuff_name_color(category)

    # ------------------------------------------------------------------ colours
    def _jitter(self, color: Sequence[float]) -> np.ndarray:
        """``color`` (RGB 0..255) moved by a random offset of fixed norm, clipped to 0..255."""
        vec = self._rng.uniform(-1.0, 1.0, size=3)
        vec = vec / max(np.linalg.norm(vec), 1e-6) * _JITTER_NORM
        return np.clip(np.asarray(color, dtype=np.float32) + vec, 0, 255).astype(np.float32)

    def _grayscale_background(self, keep: Optional[np.ndarray]) -> None:
        """Turn the pixels outside ``keep`` ((H, W) bool, input size) grey (ColorMode.IMAGE_BW)."""
        gray = cv2.cvtColor(cv2.cvtColor(self.img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        if keep is not None:
            gray[keep] = self.img[keep]
        self.output.reset_image(gray)

    # ------------------------------------------------------------------ primitives
    def _canvas_mask(self, mask: np.ndarray) -> np.ndarray:
        """(H, W) input-size mask -> bool mask of the canvas size."""
        mask = np.asarray(mask).astype(bool)
        canvas = self.output.canvas
        if mask.shape != canvas.shape[:2]:
            mask = cv2.resize(mask.astype(np.uint8), (canvas.shape[1], canvas.shape[0]),
                              interpolation=cv2.INTER_NEAREST).astype(bool)
        return mask

    def _check_map_shape(self, arr: np.ndarray, what: str) -> None:
        if arr.shape != self.img.shape[:2]:
            raise ValueError(
                f"{what} has shape {tuple(arr.shape)} but the image is {self.img.shape[0]}x{self.img.shape[1]} (H x W)"
            )

    def _font_scale(self, font_px: float) -> float:
        (_, ref_h), _ = cv2.getTextSize("Ag", _FONT, 1.0, 1)
        return float(font_px) / ref_h

    def _text_box(self, text: str, font_px: float) -> Tuple[int, int, int, float, int]:
        """(width, height above baseline, baseline depth, font scale, thickness) of ``text``."""
        scale = self._font_scale(font_px)
        thickness = max(1, int(round(font_px / 16)))
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
        return tw, th, base, scale, thickness

    def _put_text(self, text: str, xy: Tuple[float, float], color, font_px: float,
                  horizontal_alignment: str = "center", vertical_alignment: str = "center") -> None:
        """Draw ``text`` on a dark box; ``xy`` in canvas pixels, kept inside the canvas."""
        canvas = self.output.canvas
        H, W = canvas.shape[:2]
        tw, th, base, scale, thickness = self._text_box(text, font_px)
        pad = max(1, int(round(font_px * 0.2)))
        box_w, box_h = tw + 2 * pad, th + base + 2 * pad
        x, y = xy
        x0 = {"center": x - box_w / 2, "left": x, "right": x - box_w}[horizontal_alignment]
        y0 = {"center": y - box_h / 2, "top": y, "bottom": y - box_h}[vertical_alignment]
        x0 = int(round(min(max(x0, 0), max(W - box_w, 0))))
        y0 = int(round(min(max(y0, 0), max(H - box_h, 0))))
        x1, y1 = min(x0 + box_w, W), min(y0 + box_h, H)
        region = canvas[y0:y1, x0:x1].astype(np.float32)
        canvas[y0:y1, x0:x1] = np.round(region * (1.0 - _TEXT_BACKGROUND_ALPHA)).astype(np.uint8)
        cv2.putText(canvas, text, (x0 + pad, y0 + pad + th), _FONT, scale, _readable_on_black(color),
                    thickness, cv2.LINE_AA)

    def _blend(self, mask: np.ndarray, color, alpha: float) -> None:
        canvas = self.output.canvas
        pixels = canvas[mask].astype(np.float32)
        canvas[mask] = np.round(pixels * (1.0 - alpha) + np.asarray(color, np.float32) * alpha).astype(np.uint8)

    def _outline(self, mask: np.ndarray, color) -> None:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(self.output.canvas, contours, -1, tuple(float(c) for c in color), self._line_width)

    @staticmethod
    def _drop_small_components(mask: np.ndarray, area_threshold: float) -> np.ndarray:
        if not area_threshold or area_threshold <= 0 or not mask.any():
            return mask
        num, cc, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        keep = np.zeros(num, dtype=bool)
        keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= area_threshold
        return keep[cc]

    @staticmethod
    def _label_points(mask: np.ndarray) -> List[Tuple[int, int]]:
        """Canvas (x, y) points for labels: one per component that gets a label.

        The point is a pixel farthest from the component's border (maximum of the distance
        transform, within half a pixel; the one nearest the centroid), hence always inside it.
        """
        num, cc, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        if num <= 1:
            return []
        areas = stats[1:, cv2.CC_STAT_AREA]
        largest = int(np.argmax(areas)) + 1
        points = []
        for cid in range(1, num):
            if cid != largest and stats[cid, cv2.CC_STAT_AREA] <= _LARGE_MASK_AREA:
                continue
            x, y, w, h = (int(v) for v in stats[cid, :4])
            comp = np.pad((cc[y:y + h, x:x + w] == cid).astype(np.uint8), 1)
            dist = cv2.distanceTransform(comp, cv2.DIST_L2, 5)
            # Among the (near-)deepest pixels, the one closest to the centroid: for elongated
            # shapes the maximum is a ridge, and its middle reads best.
            ys, xs = np.nonzero(dist >= dist.max() - 0.5)
            cx, cy = centroids[cid][0] - x + 1, centroids[cid][1] - y + 1
            k = int(np.argmin((xs - cx) ** 2 + (ys - cy) ** 2))
            points.append((x + int(xs[k]) - 1, y + int(ys[k]) - 1))
        return points

    # ------------------------------------------------------------------ public drawing
    def draw_text(self, text: str, position: Tuple[float, float], *, font_size: Optional[float] = None,
                  color=(255, 255, 255), horizontal_alignment: str = "center") -> VisImage:
        """Draw ``text`` on a semi-transparent dark box.

        Args:
            position: (x, y) in input-image pixels: the box centre (``"center"``), its left edge
                (``"left"``) or right edge (``"right"``) at height y.
            font_size: text height in output pixels (default: from the image size).
            color: RGB 0..255; brightened if needed to stay readable.
        """
        if horizontal_alignment not in ("center", "left", "right"):
            raise ValueError(f"horizontal_alignment must be center, left or right, got {horizontal_alignment!r}")
        s = self.output.scale
        self._put_text(text, (position[0] * s, position[1] * s), color,
                       font_size or self._default_font_px, horizontal_alignment)
        return self.output

    def draw_binary_mask(self, binary_mask, color=None, *, edge_color=None, text: Optional[str] = None,
                         alpha: float = 0.5, area_threshold: Optional[float] = 10) -> VisImage:
        """Blend one mask into the image, outline it, and label it.

        Args:
            binary_mask: (H, W) bool / 0-1 array or tensor, the input image size.
            color: RGB 0..255 fill colour (default: a random palette colour).
            edge_color: RGB 0..255 outline colour, or None for no outline.
            text: label drawn inside the largest connected component (and inside every component
                larger than 120000 output pixels), at its point farthest from the border.
            alpha: fill opacity in [0, 1].
            area_threshold: connected components smaller than this (input pixels) are not drawn;
                None or 0 draws all.
        """
        mask = _to_numpy(binary_mask)
        self._check_map_shape(mask, "binary_mask")
        if color is None:
            color = random_color(rgb=True, rng=self._rng)
        s2 = self.output.scale ** 2
        mask = self._drop_small_components(self._canvas_mask(mask), (area_threshold or 0) * s2)
        if not mask.any():
            return self.output
        self._blend(mask, color, alpha)
        if edge_color is not None:
            self._outline(mask, edge_color)
        if text:
            text_color = _change_color_brightness(color, 0.7)
            for point in self._label_points(mask):
                self._put_text(text, point, text_color, self._default_font_px)
        return self.output

    def draw_legend(self, names: Sequence[str], colors: Sequence[Sequence[float]]) -> VisImage:
        """A legend in the top-right corner: one row per class, a colour swatch and the name.

        Rows that do not fit in the image height are replaced by a last row "+N more".

        Args:
            names: class names, in the order to list them.
            colors: RGB 0..255 colour per name (swatches are drawn fully opaque).
        """
        if len(names) != len(colors):
            raise ValueError(f"draw_legend got {len(names)} names but {len(colors)} colors")
        if not names:
            return self.output
        canvas = self.output.canvas
        H, W = canvas.shape[:2]
        font_px = self._default_font_px
        pad = max(1, int(round(font_px * 0.3)))
        _, th, base, scale, thickness = self._text_box("Ag", font_px)
        row_h = th + base + pad
        max_rows = max(1, (H - pad) // row_h)
        names, colors = list(names), list(colors)
        more = 0
        if len(names) > max_rows:
            more = len(names) - (max_rows - 1)
            names, colors = names[: max_rows - 1], colors[: max_rows - 1]
        rows = names + ([f"+{more} more"] if more else [])
        swatch = th + base - 2
        text_w = max(cv2.getTextSize(n, _FONT, scale, thickness)[0][0] for n in rows)
        panel_w = pad + swatch + pad + text_w + pad
        panel_h = pad + row_h * len(rows)
        x1, y0 = W, 0
        x0, y1 = max(0, x1 - panel_w), min(H, y0 + panel_h)
        region = canvas[y0:y1, x0:x1].astype(np.float32)
        canvas[y0:y1, x0:x1] = np.round(region * (1.0 - _TEXT_BACKGROUND_ALPHA)).astype(np.uint8)
        for i, name in enumerate(rows):
            top = y0 + pad + i * row_h
            if i < len(colors):
                c = tuple(int(round(float(v))) for v in colors[i])
                cv2.rectangle(canvas, (x0 + pad, top + 1), (x0 + pad + swatch - 1, top + swatch), c, -1)
            cv2.putText(canvas, name, (x0 + 2 * pad + swatch, top + th), _FONT, scale, (255, 255, 255),
                        thickness, cv2.LINE_AA)
        return self.output

    def draw_sem_seg(self, sem_seg, area_threshold: Optional[float] = None, alpha: float = 0.6, *,
                     legend: bool = True) -> VisImage:
        """Draw a semantic segmentation map (Detectron2's ``Visualizer.draw_sem_seg``).

        Each class present is filled with ``metadata.stuff_colors[c]`` (else the palette colour),
        outlined, labelled with ``metadata.stuff_classes[c]`` (else ``str(c)``); larger classes
        are drawn first. A legend lists the drawn classes by decreasing area.

        Args:
            sem_seg: (H, W) integer class map (tensor or array), the image size. Pixels with a
                negative value, ``metadata.ignore_label`` (255 if not set), or a value not below
                ``len(metadata.stuff_classes)`` are left undrawn.
            area_threshold: connected components smaller than this many input pixels are not drawn.
            alpha: fill opacity in [0, 1].
            legend: draw the legend.

        Raises:
            ValueError: the map is not (H, W) of the image size.
        """
        seg = _to_numpy(sem_seg)
        self._check_map_shape(seg, "sem_seg")
        ignore = getattr(self.metadata, "ignore_label", 255)
        stuff = self._meta("stuff_classes")
        labels, areas = np.unique(seg, return_counts=True)
        order = np.argsort(-areas, kind="stable")
        legend_names, legend_colors = [], []
        for label in labels[order].tolist():
            label = int(label)
            if label < 0 or label == ignore or (stuff is not None and label >= len(stuff)):
                continue
            name, color = self._stuff_name_color(label)
            self.draw_binary_mask(seg == label, color=color, edge_color=_OFF_WHITE, text=name, alpha=alpha,
                                  area_threshold=area_threshold)
            legend_names.append(name)
            legend_colors.append(color)
        if legend:
            self.draw_legend(legend_names, legend_colors)
        return self.output

    def _panoptic_segments(self, panoptic_seg: np.ndarray, segments_info) -> List[dict]:
        """Segments present in the map, each a dict of segments_info plus ``mask`` and ``area``."""
        ids, areas = np.unique(panoptic_seg, return_counts=True)
        area_of = dict(zip(ids.tolist(), areas.tolist()))
        if segments_info is None:
            segments_info = self._segments_from_ids(ids.tolist())
        segments = []
        for i, info in enumerate(segments_info):
            for key in ("id", "category_id"):
                if key not in info:
                    raise ValueError(f"segments_info[{i}] has no '{key}': {info}")
            seg_id = int(info["id"])
            if area_of.get(seg_id, 0) == 0:
                continue
            seg = dict(info)
            seg["isthing"] = bool(info.get("isthing", False))
            seg["mask"] = panoptic_seg == seg_id
            seg["area"] = area_of[seg_id]
            segments.append(seg)
        segments.sort(key=lambda s: -s["area"])
        return segments

    def _segments_from_ids(self, ids: List[int]) -> List[dict]:
        """segments_info for a map encoding ``category * label_divisor + instance`` (Detectron2)."""
        divisor = int(getattr(self.metadata, "label_divisor", 1000))
        ignore = getattr(self.metadata, "ignore_label", -1)
        thing_ids = set((self._meta("thing_dataset_id_to_contiguous_id") or {}).values())
        infos = []
        for seg_id in ids:
            if seg_id < 0 or seg_id == ignore:
                continue
            category = seg_id // divisor
            infos.append({"id": seg_id, "category_id": category, "isthing": category in thing_ids})
        return infos

    def draw_panoptic_seg(self, panoptic_seg, segments_info, area_threshold: Optional[float] = None,
                          alpha: float = 0.6) -> VisImage:
        """Draw a panoptic segmentation (Detectron2's ``Visualizer.draw_panoptic_seg``).

        Stuff segments get their class colour and the label "name"; thing segments get their class
        colour jittered (so neighbouring instances of one class differ) and the label "name" or
        "name 87%" when the segment has a ``score``. Pixels whose id is in no segment are void and
        left undrawn. See :meth:`_segment_name_color` for how classes are looked up.

        Args:
            panoptic_seg: (H, W) integer segment-id map (tensor or array), the image size.
            segments_info: list of dicts with ``id``, ``category_id``, ``isthing`` and optionally
                ``score``; or None, in which case ids are read as ``category * label_divisor +
                instance`` (``metadata.label_divisor``, default 1000).
            area_threshold: connected components smaller than this many input pixels are not drawn.
            alpha: fill opacity in [0, 1].

        Raises:
            ValueError: the map is not (H, W) of the image size, or a segment lacks ``id`` /
                ``category_id``.
        """
        pan = _to_numpy(panoptic_seg)
        self._check_map_shape(pan, "panoptic_seg")
        return self._draw_panoptic_segments(self._panoptic_segments(pan, segments_info), area_threshold, alpha)

    def _draw_panoptic_segments(self, segments: List[dict], area_threshold: Optional[float], alpha: float,
                                thing_colors: Optional[list] = None) -> VisImage:
        """Draw segments from :meth:`_panoptic_segments`: stuff first, then things (with
        ``thing_colors``, one per thing segment in order, or jittered class colours)."""
        if self._instance_mode == ColorMode.IMAGE_BW:
            keep = np.zeros(self.img.shape[:2], bool)
            for s in segments:
                keep |= s["mask"]
            self._grayscale_background(keep)
        for s in segments:
            if not s["isthing"]:
                name, color = self._segment_name_color(int(s["category_id"]), False)
                self.draw_binary_mask(s["mask"], color=color, edge_color=_OFF_WHITE, text=name, alpha=alpha,
                                      area_threshold=area_threshold)
        things = [s for s in segments if s["isthing"]]
        if things:
            masks, labels, colors = self._thing_segments_style(things, thing_colors)
            self.overlay_instances(masks=masks, labels=labels, assigned_colors=colors, alpha=alpha)
        return self.output

    def _thing_segments_style(self, things: List[dict], colors: Optional[list] = None):
        """Masks, labels and (jittered class, unless given) colours of thing segments."""
        masks, labels, out_colors = [], [], []
        for i, s in enumerate(things):
            name, color = self._segment_name_color(int(s["category_id"]), True)
            if "score" in s:
                name = f"{name} {float(s['score']) * 100:.0f}%"
            masks.append(s["mask"])
            labels.append(name)
            out_colors.append(colors[i] if colors is not None else self._jitter(color))
        return masks, labels, out_colors

    def _instance_style(self, predictions):
        """Masks (N, H, W) bool, boxes (N, 4), labels and class ids of Instances-like predictions."""
        boxes = _field(predictions, "pred_boxes")
        if boxes is not None:
            boxes = _to_numpy(getattr(boxes, "tensor", boxes)).astype(np.float32).reshape(-1, 4)
        scores = _field(predictions, "scores")
        scores = None if scores is None else _to_numpy(scores).reshape(-1)
        classes = _field(predictions, "pred_classes")
        classes = None if classes is None else _to_numpy(classes).reshape(-1).astype(np.int64)
        masks = _field(predictions, "pred_masks")
        if masks is not None:
            masks = _to_numpy(getattr(masks, "tensor", masks))
            masks = masks >= 0.5 if masks.dtype.kind == "f" else masks.astype(bool)
            if masks.ndim != 3 or masks.shape[1:] != self.img.shape[:2]:
                raise ValueError(
                    f"pred_masks has shape {tuple(masks.shape)}; expected (N, {self.img.shape[0]}, {self.img.shape[1]})"
                )
        labels = _create_text_labels(classes, scores, self._meta("thing_classes"))
        return masks, boxes, labels, classes

    def draw_instance_predictions(self, predictions) -> VisImage:
        """Draw instance predictions (Detectron2's ``Visualizer.draw_instance_predictions``).

        Args:
            predictions: an ``Instances``-like object with any of ``pred_masks`` ((N, H, W) bool,
                or float thresholded at 0.5, or BitMasks), ``pred_boxes`` (Boxes or (N, 4) XYXY
                input pixels; empty boxes (x1 <= x0 or y1 <= y0) are not drawn), ``scores`` (N,)
                and ``pred_classes`` (N,) indexing ``metadata.thing_classes``.

        Colours follow the instance mode: IMAGE, a random palette colour per instance;
        SEGMENTATION, the jittered ``thing_colors`` of the class; IMAGE_BW, random colours and a
        grey background. Labels are "class score%".

        Raises:
            ValueError: masks that are not (N, H, W) of the image size.
        """
        masks, boxes, labels, classes = self._instance_style(predictions)
        n = len(predictions)
        if self._instance_mode == ColorMode.SEGMENTATION and classes is not None:
            colors = [self._jitter(self._thing_name_color(int(c))[1]) for c in classes]
        else:
            colors = None
        alpha = _INSTANCE_ALPHA[self._instance_mode.name]
        if self._instance_mode == ColorMode.IMAGE_BW:
            self._grayscale_background(masks.any(axis=0) if masks is not None and n else None)
        return self.overlay_instances(masks=masks, boxes=boxes, labels=labels, assigned_colors=colors, alpha=alpha)

    def overlay_instances(self, *, boxes=None, labels: Optional[Sequence[str]] = None, masks=None,
                          assigned_colors: Optional[Sequence] = None, alpha: float = 0.5) -> VisImage:
        """Draw N instances: masks (filled, outlined darker), boxes and labels.

        As Detectron2's ``Visualizer.overlay_instances``: larger instances are drawn first so
        small ones stay visible; a label goes above its box's top-left corner (inside the box if
        there is no room), or inside the mask when there is no usable box.

        Args:
            boxes: (N, 4) XYXY boxes in input pixels (array, tensor or Boxes), or None.
            labels: N strings, or None.
            masks: (N, H, W) bool masks or a list of (H, W) masks, or None.
            assigned_colors: N RGB 0..255 colours, or None for random palette colours.
            alpha: mask opacity in [0, 1].

        Raises:
            ValueError: the inputs disagree on N.
        """
        if boxes is not None:
            boxes = _to_numpy(getattr(boxes, "tensor", boxes)).astype(np.float32).reshape(-1, 4)
        if masks is not None:
            masks = [np.asarray(_to_numpy(m)).astype(bool) for m in masks]
        counts = {k: len(v) for k, v in (("boxes", boxes), ("labels", labels), ("masks", masks),
                                          ("assigned_colors", assigned_colors)) if v is not None}
        if len(set(counts.values())) > 1:
            raise ValueError(f"overlay_instances got different numbers of instances: {counts}")
        n = next(iter(counts.values()), 0)
        if n == 0:
            return self.output
        if assigned_colors is None:
            assigned_colors = [random_color(rgb=True, rng=self._rng) for _ in range(n)]
        valid_box = None
        if boxes is not None:
            valid_box = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) * valid_box
        if masks is not None and (boxes is None or not valid_box.all()):
            areas = np.asarray([m.sum() for m in masks], dtype=np.float64)
        order = np.argsort(-areas, kind="stable") if (boxes is not None or masks is not None) else range(n)
        s = self.output.scale
        for i in order:
            color = np.asarray(assigned_colors[i], dtype=np.float32)
            mask = None
            if masks is not None:
                self._check_map_shape(masks[i], "instance mask")
                self.draw_binary_mask(masks[i], color=color, edge_color=_change_color_brightness(color, -0.7),
                                      alpha=alpha, area_threshold=0)
                mask = self._canvas_mask(masks[i])
            has_box = boxes is not None and bool(valid_box[i])
            if has_box:
                x0, y0, x1, y1 = (float(v) * s for v in boxes[i])
                cv2.rectangle(self.output.canvas, (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1))),
                              tuple(float(c) for c in color), self._line_width)
            if not labels:
                continue
            text_color = _change_color_brightness(color, 0.7)
            if has_box:
                H, W = self.output.canvas.shape[:2]
                height_ratio = (y1 - y0) / np.sqrt(H * W)
                font_px = float(np.clip((height_ratio - 0.02) / 0.08 + 1, 1.2, 2) * 0.6 * self._default_font_px)
                _, th, base, _, _ = self._text_box(labels[i], font_px)
                above = y0 - (th + base + 2 * max(1, round(font_px * 0.2)))
                if above >= 0:
                    self._put_text(labels[i], (x0, y0), text_color, font_px, "left", "bottom")
                else:
                    self._put_text(labels[i], (x0, y0), text_color, font_px, "left", "top")
            elif mask is not None:
                for point in self._label_points(mask)[:1]:
                    self._put_text(labels[i], point, text_color, self._default_font_px)
        return self.output

    # Detectron2's earlier name for draw_panoptic_seg, used by the original demos.
    draw_panoptic_seg_predictions = draw_panoptic_seg
