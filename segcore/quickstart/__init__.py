"""The quickstart dataset generator: real bundled photographs with pasted objects, written in the
ADE20K semantic, COCO panoptic and COCO instance formats, and videos of moving objects in the
YouTube-VIS format (:mod:`.video`, :mod:`.video_dataset`).

Write the dataset with ``python -m segcore.quickstart.generate --root datasets`` or
:func:`generate_quickstart`. This package imports scikit-image (and reads matplotlib's sample
data); nothing in the engine imports it. Its names are imported on first use (``runs``, the
quickstart table and runs, is light). Reading the written dataset does not need it: the
datasets ``quickstart_sem_seg_{train,val}``, ``quickstart_panoptic_{train,val}`` and
``quickstart_instance_{train,val}`` (and the videos' ``quickstart_ytvis_{train,val}``) are registered by ``import segcore.data``
(:mod:`segcore.data.datasets.quickstart`, which also holds the category table's loader,
:func:`~segcore.data.datasets.quickstart.load_quickstart_categories`).
"""
from importlib import import_module
from typing import Any

#: the public names, by the module (of this package) that defines them; imported on first use, so
#: that ``segcore.quickstart.runs`` (the quickstart table the demo reads) does not load the generator
_EXPORTS = {
    "ADESemSegWriter": "writers", "MANIFEST_NAME": "dataset", "PastedObject": "scene", "SceneParams": "scene",
    "SceneRecord": "scene", "Segment": "scene", "ade_file_stem": "writers", "generate_quickstart": "dataset",
    "iter_scenes": "dataset", "render_scene": "scene", "Track": "video", "VideoParams": "video",
    "VideoRecord": "video", "render_video": "video", "YTVISWriter": "video_dataset",
    "generate_quickstart_videos": "video_dataset", "iter_videos": "video_dataset",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
