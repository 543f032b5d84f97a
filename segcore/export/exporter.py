"""Exporting a mask-classification model: ``torch.export`` of :class:`ExportableNetwork`, then a
``.pt2`` program (``torch.export.save``), an ONNX file (``torch.onnx.export``'s dynamo-based
exporter) or an AOTInductor package (``torch._inductor.aoti_compile_and_package``: the program
compiled ahead of time to a shared library), checked and run once, with ``export_info.json``
beside it.

Both formats come from one ``torch.export`` trace with the image height and width as dynamic
dimensions, so one file serves every image size. A family's own operators stay single nodes in
the ``.pt2`` program (they run on their compiled kernels once their module is imported) and are
written in standard ONNX operators by the translations the family declares
(:mod:`segcore.export.custom_ops`); an operator without one is refused before the ONNX export,
with the module that calls it named.
"""
from __future__ import annotations

import logging
import os
import platform
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import nn

from .custom_ops import custom_op
from .errors import ExportError
from .info import MODEL_FILES, ExportInfo, file_sha256, write_export_info
from .network import ExportableNetwork

__all__ = ["EXPORT_FORMATS", "POSTPROCESS_CHOICES", "check_exportable", "export_from_config", "export_model",
           "exported_custom_ops"]

logger = logging.getLogger(__name__)

#: onnx: onnxruntime; pt2: a torch.export program; aoti: an AOTInductor package of that program (CPU)
EXPORT_FORMATS = tuple(MODEL_FILES)
POSTPROCESS_CHOICES = ("none", "semantic")
#: the ONNX opset written (GridSample, which deformable attention becomes, is in opset >= 16)
DEFAULT_OPSET = 18
#: the largest image side the exported graphs accept (pixels)
MAX_IMAGE_SIDE = 8192
#: the operator namespaces that are PyTorch's own (everything else is a family's operator)
_TORCH_NAMESPACES = frozenset({"aten", "prims", "prim", "higher_order", "_operator", "quantized_decomposed"})


def check_exportable(model: nn.Module, cfg=None) -> None:
    """Refuse what cannot be exported, naming the module and the reason.

    Raises:
        ExportError: test-time augmentation (``TEST.AUG.ENABLED``, or a TTA wrapper given as the
            model), or a model without the mask-classification interface (``backbone``,
            ``sem_seg_head`` returning ``pred_logits`` / ``pred_masks``, ``pixel_mean`` /
            ``pixel_std``, ``size_divisibility``).
    """
    name = type(model).__name__
    if (cfg is not None and cfg.TEST.AUG.ENABLED) or hasattr(model, "tta_mapper"):
        raise ExportError(f"{name if hasattr(model, 'tta_mapper') else 'SemanticSegmentorWithTTA'} "
                          "(TEST.AUG.ENABLED): test-time augmentation cannot be exported: it runs the network on "
                          "several resized and flipped copies of an image chosen in Python and merges their results; "
                          "export the model with TEST.AUG.ENABLED False")
    missing = [a for a in ("backbone", "sem_seg_head", "pixel_mean", "pixel_std", "size_divisibility")
               if not hasattr(model, a)]
    if missing or not hasattr(model, "postprocessor"):
        what = f"lacks {missing}" if missing else "has no mask-classification postprocessor"
        raise ExportError(f"{name} (MODEL.META_ARCHITECTURE) cannot be exported: it {what}; the exporters take "
                          "mask-classification models (MaskFormer, Mask2Former, SeMask-MaskFormer) whose head returns "
                          "pred_logits and pred_masks")


def exported_custom_ops(program: "torch.export.ExportedProgram") -> Dict[str, List[str]]:
    """The non-PyTorch operators of ``program``'s graphs (nested ones included), each with the
    modules that call it (``"path (Class)"``)."""
    found: Dict[str, List[str]] = {}
    for module in program.graph_module.modules():
        if not isinstance(module, torch.fx.GraphModule):
            continue
        for node in module.graph.nodes:
            target = node.target
            if node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
                continue
            if target.namespace in _TORCH_NAMESPACES:
                continue
            where = found.setdefault(target._schema.name, [])
            stack = node.meta.get("nn_module_stack") or {}
            if stack:
                path, cls = list(stack.values())[-1]
                cls_name = cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
                entry = f"{path or '<network>'} ({cls_name.rsplit('.', 1)[-1]})"
            else:
                entry = "<network>"
            if entry not in where:
                where.append(entry)
    return found


def example_image(height: int, width: int) -> torch.Tensor:
    """A deterministic float32 (1, 3, H, W) image of 0..255 values (smooth gradients with texture)
    for tracing and for the exporter's check run."""
    ys = torch.linspace(0, 1, height).view(1, height, 1)
    xs = torch.linspace(0, 1, width).view(1, 1, width)
    channels = torch.arange(3, dtype=torch.float32).view(3, 1, 1)
    image = 127.5 + 100 * torch.sin(6.0 * ys + 4.0 * xs + channels) * torch.cos(9.0 * xs * ys - channels)
    return image.clamp(0, 255).unsqueeze(0).contiguous()


def export_model(model: nn.Module, cfg, output_dir: str, *, format: str, input_size: Optional[Sequence[int]] = None,
                 postprocess: str = "none", config_file: str = "", opset: int = DEFAULT_OPSET,
                 optimize: bool = True, check: bool = True) -> ExportInfo:
    """Export ``model`` (built from ``cfg``, weights loaded) to ``output_dir``.

    Writes ``model.onnx``, ``model.pt2`` or ``model_aoti.pt2`` and ``export_info.json``. The graph's interface is
    :class:`ExportableNetwork`'s: input ``image`` float32 (1, 3, H, W) in 0..255 (any H and W
    from ``size_divisibility + 1`` to :data:`MAX_IMAGE_SIDE`), outputs ``pred_logits``,
    ``pred_masks`` and, with ``postprocess="semantic"``, ``sem_seg``.

    Args:
        model: a mask-classification model in eval mode (:func:`check_exportable`).
        cfg: its config (pre- and post-processing settings, metadata, weights path).
        output_dir: created if missing.
        format: "onnx", "pt2" or "aoti" (an AOTInductor package compiled for the CPU; needs a C++
            compiler, and takes minutes for an R50 model).
        input_size: (H, W) of the example image traced and run by the check (default
            ``INPUT.MIN_SIZE_TEST`` square, 512 if that is 0); the file serves any size.
        postprocess: "none" or "semantic" (see :class:`ExportableNetwork`).
        config_file: recorded in ``export_info.json``.
        opset: the ONNX opset (>= 18).
        optimize: ONNX: run the ONNX optimizer of ``torch.onnx.export`` (constant folding, dead
            code removal; onnxruntime optimizes the graph again when it loads it). False exports in
            about half the time, to a larger file with the same outputs.
        check: ONNX: ``onnx.checker`` and one onnxruntime run; pt2: ``torch.export.load`` and one
            run; aoti: ``torch._inductor.aoti_load_package`` and one run; each compared with the eager network on the example image (the largest
            differences are logged and recorded in ``export_info.json``).

    Returns:
        the :class:`ExportInfo` written.

    Raises:
        ExportError: the model cannot be exported (see :func:`check_exportable`; an operator
            without an ONNX form, naming its module; the exporter's own failure), or the check
            failed (wrong output shapes, non-finite values).
        ValueError: unknown ``format`` / ``postprocess``, an ``opset`` < 18, an input size out of range.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"export format must be one of {EXPORT_FORMATS}, got {format!r}")
    if postprocess not in POSTPROCESS_CHOICES:
        raise ValueError(f"postprocess must be one of {POSTPROCESS_CHOICES}, got {postprocess!r}")
    if format == "onnx" and opset < DEFAULT_OPSET:
        raise ValueError(f"opset {opset}: the export writes opset {DEFAULT_OPSET} operators (and GridSample, which "
                         "deformable attention becomes, needs opset >= 16)")
    check_exportable(model, cfg)
    model.eval()
    network = ExportableNetwork(model, semantic=postprocess == "semantic").eval()
    min_side = max(2, network.size_divisibility + 1)
    if input_size is None:
        side = int(cfg.INPUT.MIN_SIZE_TEST) or 512
        input_size = (side, side)
    height, width = (int(input_size[0]), int(input_size[-1]))
    if not (min_side <= height <= MAX_IMAGE_SIDE and min_side <= width <= MAX_IMAGE_SIDE):
        raise ValueError(f"input size {height}x{width}: each side must be in [{min_side}, {MAX_IMAGE_SIDE}]")
    image = example_image(height, width)
    os.makedirs(output_dir, exist_ok=True)

    program = trace_network(network, image, min_side)
    ops = exported_custom_ops(program)
    imports = sorted({custom_op(name).import_name for name in ops if custom_op(name) is not None})
    with torch.no_grad():
        expected = [t.detach() for t in network(image)]
    model_file = MODEL_FILES[format]
    path = os.path.join(output_dir, model_file)
    used_opset = None
    if format == "pt2":
        torch.export.save(program, path)
        outputs = _run_pt2(path, image) if check else None
    elif format == "aoti":
        _aoti_package(program, path)
        outputs = _run_aoti(path, image) if check else None
    else:
        _onnx_export(program, image, network.output_names, path, opset, ops, optimize)
        outputs = _check_onnx(path, image) if check else None
        used_opset = opset
    check_report = _compare(expected, outputs, network.output_names) if outputs is not None else {}
    info = ExportInfo(
        format=format, model_file=model_file, model_sha256=file_sha256(path),
        input={"name": "image", "dtype": "float32", "shape": [1, 3, "height", "width"], "min_size": min_side,
               "max_size": MAX_IMAGE_SIDE, "example_size": [height, width]},
        outputs=_output_specs(network, expected),
        preprocessing={"input_format": cfg.INPUT.FORMAT, "pixel_mean": [float(v) for v in network.pixel_mean.flatten()],
                       "pixel_std": [float(v) for v in network.pixel_std.flatten()],
                       "size_divisibility": network.size_divisibility,
                       "min_size_test": int(cfg.INPUT.MIN_SIZE_TEST), "max_size_test": int(cfg.INPUT.MAX_SIZE_TEST)},
        postprocessing=_postprocessing(model),
        metadata=_metadata(getattr(model, "metadata", None)),
        postprocess=postprocess, config_file=config_file, weights=str(cfg.MODEL.WEIGHTS), opset=used_opset,
        custom_op_imports=imports, versions=_versions(format), check=check_report)
    write_export_info(output_dir, info)
    logger.info("exported %s to %s (%.1f MiB)%s", type(model).__name__, path, os.path.getsize(path) / 2**20,
                f"; largest differences from eager: {check_report['max_abs_diff']}" if check_report else "")
    return info


def export_from_config(cfg, output_dir: str, *, config_file: str = "", **kwargs) -> ExportInfo:
    """Build ``cfg``'s model on the CPU, load ``MODEL.WEIGHTS`` (every weight, as
    :class:`~segcore.engine.DefaultPredictor` does) and :func:`export_model` it (``kwargs``).

    Raises:
        ExportError: see :func:`export_model` (test-time augmentation is refused before the model is built).
        IncompleteWeightsError, NonFiniteWeightsError, CheckpointReadError: the weights cannot be used.
    """
    from segcore.engine.weights import load_inference_weights
    from segcore.modeling import build_model

    if cfg.TEST.AUG.ENABLED:
        check_exportable(nn.Module(), cfg)
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    model = build_model(cfg)
    model.eval()
    load_inference_weights(model, cfg)
    return export_model(model, cfg, output_dir, config_file=config_file, **kwargs)


def trace_network(network: ExportableNetwork, image: torch.Tensor, min_side: int) -> "torch.export.ExportedProgram":
    """``torch.export.export`` of ``network`` on ``image`` with dynamic height and width.

    Raises:
        ExportError: the trace failed (the message names the exception and keeps its text).
    """
    height = torch.export.Dim("height", min=min_side, max=MAX_IMAGE_SIDE)
    width = torch.export.Dim("width", min=min_side, max=MAX_IMAGE_SIDE)
    try:
        # size-oblivious reasoning: a size is not specialized on being 0 or 1 (a Swin stage with a
        # single window would otherwise fix the graph to many windows or to one)
        with torch.fx.experimental._config.patch(backed_size_oblivious=True):
            return torch.export.export(network, (image,), dynamic_shapes={"image": {2: height, 3: width}},
                                       strict=False, prefer_deferred_runtime_asserts_over_guards=True)
    except Exception as e:  # noqa: BLE001 - any tracing failure is reported with its cause
        raise ExportError(f"torch.export could not trace {type(network.backbone).__name__} + "
                          f"{type(network.sem_seg_head).__name__} with a dynamic image size: "
                          f"{type(e).__name__}: {e}") from e


def _onnx_export(program, image: torch.Tensor, output_names: Sequence[str], path: str, opset: int,
                 ops: Dict[str, List[str]], optimize: bool = True) -> None:
    translations = {}
    for name, modules in ops.items():
        declared = custom_op(name)
        if declared is None or declared.onnx_translation is None:
            raise ExportError(f"{', '.join(modules)}: operator {name} has no ONNX form, so the model cannot be exported "
                              "to ONNX (declare one with segcore.export.register_custom_op(..., onnx_translation=...), "
                              "or export to pt2, which keeps the operator)")
        namespace, op_name = name.split("::")
        translations[getattr(getattr(torch.ops, namespace), op_name).default] = declared.onnx_translation
    try:
        onnx_program = torch.onnx.export(program, (image,), dynamo=True, input_names=["image"],
                                         output_names=list(output_names), opset_version=opset,
                                         custom_translation_table=translations or None, verbose=False,
                                         optimize=optimize)
        onnx_program.save(path)
    except ExportError:
        raise
    except Exception as e:  # noqa: BLE001 - the exporter's failures name the operator; keep the text
        raise ExportError(f"torch.onnx.export failed: {type(e).__name__}: {e}") from e


def _aoti_package(program, path: str) -> None:
    try:
        from torch._inductor import aoti_compile_and_package

        aoti_compile_and_package(program, package_path=path)
    except Exception as e:  # noqa: BLE001 - compiler and codegen failures; keep the text
        raise ExportError(f"AOTInductor could not compile the program: {type(e).__name__}: {e}") from e


def _run_aoti(path: str, image: torch.Tensor) -> List[torch.Tensor]:
    from torch._inductor import aoti_load_package

    with torch.no_grad():
        return [t.detach() for t in aoti_load_package(path)(image)]


def _check_onnx(path: str, image: torch.Tensor) -> List[torch.Tensor]:
    import onnx
    import onnxruntime

    try:
        onnx.checker.check_model(path)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"{path} fails onnx.checker: {e}") from e
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return [torch.from_numpy(o) for o in session.run(None, {"image": image.numpy()})]


def _run_pt2(path: str, image: torch.Tensor) -> List[torch.Tensor]:
    loaded = torch.export.load(path)
    with torch.no_grad():
        return [t.detach() for t in loaded.module()(image)]


def _compare(expected: Sequence[torch.Tensor], got: Sequence[torch.Tensor], names: Sequence[str]) -> Dict[str, Any]:
    if len(got) != len(expected):
        raise ExportError(f"the exported model returns {len(got)} outputs, the network {len(expected)} ({names})")
    diffs = {}
    for name, e, g in zip(names, expected, got):
        if tuple(e.shape) != tuple(g.shape):
            raise ExportError(f"output {name}: the exported model returns shape {tuple(g.shape)}, the network "
                              f"{tuple(e.shape)}")
        if not torch.isfinite(g).all():
            raise ExportError(f"output {name}: the exported model returns non-finite values on the example image")
        diffs[name] = float((e.float() - g.float()).abs().max()) if e.numel() else 0.0
    return {"max_abs_diff": diffs}


def _output_specs(network: ExportableNetwork, outputs: Sequence[torch.Tensor]) -> List[Dict[str, Any]]:
    logits, masks = outputs[0], outputs[1]
    specs = [{"name": "pred_logits", "shape": list(logits.shape)},
             {"name": "pred_masks", "shape": [1, int(masks.shape[1]), "padded_height / 4", "padded_width / 4"]}]
    if network.semantic:
        specs.append({"name": "sem_seg", "shape": [int(outputs[2].shape[0]), "height", "width"]})
    return specs


def _postprocessing(model: nn.Module) -> Dict[str, Any]:
    post = model.postprocessor
    return {"class": f"{type(post).__module__}.{type(post).__qualname__}",
            "semantic_on": bool(post.semantic_on), "panoptic_on": bool(post.panoptic_on),
            "instance_on": bool(post.instance_on), "masks_at_output_size": bool(post.masks_at_output_size),
            "object_mask_threshold": float(post.object_mask_threshold),
            "overlap_threshold": float(post.overlap_threshold),
            "panoptic_mask_must_be_confident": bool(post.panoptic_mask_must_be_confident),
            "topk": int(post.topk), "thing_classes": [int(c) for c in post.thing_classes]}


#: the metadata entries copied into export_info.json (names and colours for drawing, the id maps)
_METADATA_KEYS = ("stuff_classes", "stuff_colors", "thing_classes", "thing_colors", "ignore_label",
                  "thing_dataset_id_to_contiguous_id", "stuff_dataset_id_to_contiguous_id")


def _metadata(metadata) -> Dict[str, Any]:
    if metadata is None:
        return {}
    out = {}
    for key in _METADATA_KEYS:
        value = metadata.as_dict().get(key) if hasattr(metadata, "as_dict") else None
        if value is None:
            continue
        if isinstance(value, dict):  # JSON keys are strings: store the id maps as pairs
            value = [[int(k), int(v)] for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            value = [list(v) if isinstance(v, (list, tuple)) else v for v in value]
        out[key] = value
    if hasattr(metadata, "name"):
        out["name"] = metadata.name
    return out


def _versions(format: str) -> Dict[str, str]:
    versions = {"torch": torch.__version__, "python": platform.python_version()}
    if format == "onnx":
        import onnx
        import onnxruntime

        versions.update(onnx=onnx.__version__, onnxruntime=onnxruntime.__version__)
        try:
            import onnxscript

            versions["onnxscript"] = onnxscript.__version__
        except ImportError:
            pass
    return versions
