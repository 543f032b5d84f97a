#!/usr/bin/env python
"""The semantic label map of one image from an ONNX export, with numpy, OpenCV and onnxruntime only
(no torch, no model code).

Example::

    python tools/deploy/export_model.py --config-file CONFIG --format onnx --postprocess semantic \\
        --output export/ade --opts MODEL.WEIGHTS model_final.pkl
    python tools/deploy/onnx_semantic.py export/ade photo.jpg labels.png

The export folder must come from ``--format onnx --postprocess semantic``. Steps, as the PyTorch
predictor: the image (read by OpenCV, BGR) in the export's channel order, resized so that its
shorter side is ``min_size_test`` (the longer at most ``max_size_test``; OpenCV's bilinear resize,
which rounds differently from the Pillow resize of the PyTorch path, so the label maps can differ
near class boundaries of a resized image), the graph (normalization, padding, the network and the
semantic inference inside), the scores resized bilinearly back to the image's size, and the arg max
over the K classes. ``OUT.png`` holds the class index of each pixel (contiguous ids 0..K-1, as the
model's ``sem_seg`` arg max): 8-bit when every index is below 256, else 16-bit.
"""
import argparse
import hashlib
import json
import os

import cv2
import numpy as np
import onnxruntime

#: OpenCV resizes at most this many channels at a time
_CV_MAX_CHANNELS = 512


def read_info(export_dir):
    """``export_info.json`` of an ONNX export with the semantic output, after checking the model file."""
    path = os.path.join(export_dir, "export_info.json")
    if not os.path.isfile(path):
        raise SystemExit(f"onnx_semantic.py: error: {path} not found (make it with tools/deploy/export_model.py)")
    with open(path) as f:
        info = json.load(f)
    if info.get("format") != "onnx" or "sem_seg" not in [o["name"] for o in info.get("outputs", [])]:
        raise SystemExit(f"onnx_semantic.py: error: {export_dir} is not an ONNX export with the semantic output "
                         "(export with --format onnx --postprocess semantic)")
    model_path = os.path.join(export_dir, info["model_file"])
    digest = hashlib.sha256()
    with open(model_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != info["model_sha256"]:
        raise SystemExit(f"onnx_semantic.py: error: {path} does not describe {model_path} (SHA-256 differs)")
    return info, model_path


def resized_size(height, width, short_edge, max_size):
    """Detectron2's ResizeShortestEdge output (h, w) (segcore.data.transforms.ResizeShortestEdge)."""
    scale = short_edge * 1.0 / min(height, width)
    new_h, new_w = (short_edge * 1.0, scale * width) if height < width else (scale * height, short_edge * 1.0)
    if max(new_h, new_w) > max_size:
        scale = max_size * 1.0 / max(new_h, new_w)
        new_h, new_w = new_h * scale, new_w * scale
    return max(1, int(new_h + 0.5)), max(1, int(new_w + 0.5))


def resize_scores(scores, height, width):
    """(K, h, w) float32 scores resized bilinearly (half-pixel centres) to (K, height, width)."""
    parts = []
    for start in range(0, scores.shape[0], _CV_MAX_CHANNELS):
        chunk = np.ascontiguousarray(scores[start:start + _CV_MAX_CHANNELS].transpose(1, 2, 0))
        out = cv2.resize(chunk, (width, height), interpolation=cv2.INTER_LINEAR)
        parts.append(out.reshape(height, width, -1).transpose(2, 0, 1))
    return np.concatenate(parts, axis=0)


def semantic_labels(export_dir, image_bgr, threads=0):
    """The (H, W) int64 class indices of a BGR uint8 (H, W, 3) image."""
    info, model_path = read_info(export_dir)
    pre = info["preprocessing"]
    height, width = image_bgr.shape[:2]
    image = image_bgr[:, :, ::-1] if pre["input_format"] == "RGB" else image_bgr
    if pre["min_size_test"] > 0:
        new_h, new_w = resized_size(height, width, pre["min_size_test"], pre["max_size_test"])
        if (new_h, new_w) != (height, width):
            image = cv2.resize(np.ascontiguousarray(image), (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    low, high = info["input"]["min_size"], info["input"]["max_size"]
    if not (low <= image.shape[0] <= high and low <= image.shape[1] <= high):
        raise SystemExit(f"onnx_semantic.py: error: the export takes {low} to {high} pixels a side, "
                         f"the image is {image.shape[0]}x{image.shape[1]}")
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    batch = np.ascontiguousarray(image.transpose(2, 0, 1))[None].astype(np.float32)
    scores = session.run(["sem_seg"], {info["input"]["name"]: batch})[0]
    if scores.shape[1:] != (height, width):
        scores = resize_scores(scores, height, width)
    return scores.argmax(axis=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Semantic label map of an image from an ONNX export (no torch).",
                                     epilog=__doc__.split("Example::", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_dir", metavar="DIR", help="an export folder (--format onnx --postprocess semantic)")
    parser.add_argument("image", metavar="IMAGE", help="the image file")
    parser.add_argument("output", metavar="OUT.png", help="where to write the label map")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime's intra-op threads (default: its own)")
    args = parser.parse_args(argv)
    image = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"onnx_semantic.py: error: cannot read the image {args.image}")
    labels = semantic_labels(args.export_dir, image, args.threads)
    dtype = np.uint8 if labels.max(initial=0) < 256 else np.uint16
    if not cv2.imwrite(args.output, labels.astype(dtype)):
        raise SystemExit(f"onnx_semantic.py: error: cannot write {args.output}")
    print(f"wrote {args.output}: {labels.shape[0]}x{labels.shape[1]} class indices")
    return labels


if __name__ == "__main__":
    main()
