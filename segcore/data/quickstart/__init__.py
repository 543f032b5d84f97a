"""The quickstart dataset: real bundled photographs with pasted objects, in the ADE20K layout.

Write it with ``python -m segcore.data.quickstart.generate --root datasets`` or
:func:`generate_quickstart`; importing this package registers ``quickstart_sem_seg_train`` and
``quickstart_sem_seg_val``.
"""
from .categories import load_quickstart_categories
from .dataset import DATASET_DIRNAME, MANIFEST_NAME, generate_quickstart, iter_scenes, quickstart_dataset_dir
from .scene import IGNORE_LABEL, PastedObject, SceneParams, SceneRecord, Segment, render_scene
from .writers import ADESemSegWriter, ade_file_stem
# importing .register registers quickstart_sem_seg_{train,val}
from .register import QUICKSTART_SEM_SEG_SPLITS, load_quickstart_sem_seg, register_all_quickstart

__all__ = [
    "ADESemSegWriter",
    "DATASET_DIRNAME",
    "IGNORE_LABEL",
    "MANIFEST_NAME",
    "PastedObject",
    "QUICKSTART_SEM_SEG_SPLITS",
    "SceneParams",
    "SceneRecord",
    "Segment",
    "ade_file_stem",
    "generate_quickstart",
    "iter_scenes",
    "load_quickstart_categories",
    "load_quickstart_sem_seg",
    "quickstart_dataset_dir",
    "register_all_quickstart",
    "render_scene",
]
