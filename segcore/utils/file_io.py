"""Path handling through iopath: local files, ``http(s)://`` URLs (cached) and ``detectron2://``.

``detectron2://X`` resolves to ``https://dl.fbaipublicfiles.com/detectron2/X``, the official
Detectron2 / MaskFormer / Mask2Former model-zoo host, exactly as in Detectron2.

URLs are downloaded once into iopath's cache (``$FVCORE_CACHE``, default
``~/.torch/iopath_cache``; a URL ``https://host/a/b/f.pkl`` is cached as ``<cache>/a/b/f.pkl``)
and read from there afterwards, with no network access. Without network access, a URL that is
not cached yet fails with an :class:`OSError` that names the URL and the exact cache path to put
the file at (see :func:`get_cache_path`).
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional
from urllib.parse import urlparse

from iopath.common.download import download
from iopath.common.file_io import HTTPURLHandler, OneDrivePathHandler, PathHandler, file_lock, get_cache_dir
from iopath.common.file_io import PathManager as _PathManagerCls

__all__ = ["PathManager", "CachedHTTPURLHandler", "Detectron2Handler", "MODEL_ZOO_PREFIX", "get_cache_path"]

MODEL_ZOO_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"

PathManager = _PathManagerCls()


def get_cache_path(url: str, cache_dir: Optional[str] = None) -> str:
    """The local file that iopath's ``HTTPURLHandler`` caches ``url`` at.

    ``<cache_dir>/<folder part of the URL path>/<file name>``, with ``cache_dir`` defaulting to
    ``$FVCORE_CACHE`` or ``~/.torch/iopath_cache`` (iopath's ``get_cache_dir``, which creates it).
    A ``detectron2://X`` path is first resolved to its model-zoo URL.

    Example: ``detectron2://ImageNetPretrained/torchvision/R-50.pkl`` ->
    ``~/.torch/iopath_cache/detectron2/ImageNetPretrained/torchvision/R-50.pkl``.
    """
    if url.startswith(Detectron2Handler.PREFIX):
        url = MODEL_ZOO_PREFIX + url[len(Detectron2Handler.PREFIX):]
    dirname = os.path.join(get_cache_dir(cache_dir), os.path.dirname(urlparse(url).path.lstrip("/")))
    filename = url.split("/")[-1]
    if len(filename) > HTTPURLHandler.MAX_FILENAME_LEN:
        raise ValueError(f"URL file name longer than {HTTPURLHandler.MAX_FILENAME_LEN} characters: {url}")
    return os.path.join(dirname, filename)


class CachedHTTPURLHandler(HTTPURLHandler):
    """iopath's ``HTTPURLHandler`` (same cache layout) with a clear error when offline.

    A cached file is used as it is, without network access. A failed download raises
    ``OSError("Cannot download <url> ...: put the file at <cache path> ...")``.
    """

    def _get_local_path(self, path: str, force: bool = False, cache_dir: Optional[str] = None, **kwargs: Any) -> str:
        self._check_kwargs(kwargs)
        if not force and path in self.cache_map and os.path.exists(self.cache_map[path]):
            return self.cache_map[path]
        cached = get_cache_path(path, cache_dir)
        if force or not os.path.isfile(cached):
            dirname, filename = os.path.split(cached)
            with file_lock(cached):
                if force or not os.path.isfile(cached):
                    logging.getLogger(__name__).info(f"Downloading {path} ...")
                    try:
                        cached = download(path, dirname, filename=filename)
                    except OSError as e:  # includes urllib's URLError / HTTPError
                        raise OSError(
                            f"Cannot download {path} ({type(e).__name__}: {e}). Download it on a machine "
                            f"with network access and put it at {cached} (the local cache, "
                            "$FVCORE_CACHE or ~/.torch/iopath_cache), or pass a local file instead "
                            "(e.g. MODEL.WEIGHTS /path/to/file)."
                        ) from e
        logging.getLogger(__name__).info(f"URL {path} cached in {cached}")
        self.cache_map[path] = cached
        return cached


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


PathManager.register_handler(CachedHTTPURLHandler())
PathManager.register_handler(OneDrivePathHandler())
PathManager.register_handler(Detectron2Handler())
