"""Path handling through iopath: local files, ``http(s)://`` URLs (cached) and ``detectron2://``.

``detectron2://X`` resolves to ``https://dl.fbaipublicfiles.com/detectron2/X``, the official
Detectron2 / MaskFormer / Mask2Former model-zoo host, exactly as in Detectron2.
"""
from __future__ import annotations

from iopath.common.file_io import HTTPURLHandler, OneDrivePathHandler, PathHandler
from iopath.common.file_io import PathManager as _PathManagerCls

__all__ = ["PathManager", "Detectron2Handler", "MODEL_ZOO_PREFIX"]

MODEL_ZOO_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"

PathManager = _PathManagerCls()


class Detectron2Handler(PathHandler):
    """Resolve ``detectron2://`` paths to the official model-zoo host."""

    PREFIX = "detectron2://"
    S3_DETECTRON2_PREFIX = MODEL_ZOO_PREFIX

    def _get_supported_prefixes(self):
        return [self.PREFIX]

    def _get_local_path(self, path, **kwargs):
        name = path[len(self.PREFIX):]
        return PathManager.get_local_path(self.S3_DETECTRON2_PREFIX + name, **kwargs)

    def _open(self, path, mode="r", **kwargs):
        return PathManager.open(self._get_local_path(path), mode, **kwargs)


PathManager.register_handler(HTTPURLHandler())
PathManager.register_handler(OneDrivePathHandler())
PathManager.register_handler(Detectron2Handler())
