"""Augmentation policies and the input they act on (Detectron2's ``detectron2/data/transforms/augmentation.py``).

An :class:`Augmentation` looks at its inputs (the image, and the label map if it asks for
``sem_seg``) and returns a deterministic :class:`Transform`; :class:`AugInput` then applies that
transform to the image and the label map alike, so geometry stays consistent. Randomness is
drawn from ``numpy.random``, so seeding numpy makes a pipeline reproducible.
"""
from __future__ import annotations

import inspect
import pprint
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
from fvcore.transforms.transform import Transform, TransformList

__all__ = [
    "AugInput",
    "Augmentation",
    "AugmentationList",
    "StandardAugInput",
    "TransformGen",
    "apply_augmentations",
    "apply_transform_gens",
]


def _check_img_dtype(img: Any) -> None:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"Augmentations need an image as a numpy array; got {type(img).__name__}")
    if np.issubdtype(img.dtype, np.integer) and img.dtype != np.uint8:
        raise TypeError(f"Augmentations need a uint8 or floating-point image; got dtype {img.dtype}")
    if img.ndim not in (2, 3):
        raise ValueError(f"Augmentations need an (H, W) or (H, W, C) image; got shape {img.shape}")


def _get_aug_input_args(aug: "Augmentation", aug_input: Any) -> List[Any]:
    """The arguments of ``aug.get_transform``, read as attributes of ``aug_input``."""
    if aug.input_args is None:
        prms = list(inspect.signature(aug.get_transform).parameters.items())
        # one parameter means "image", whatever its name (as in Detectron2)
        if len(prms) == 1:
            names: Tuple[str, ...] = ("image",)
        else:
            for name, prm in prms:
                if prm.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                    raise TypeError(
                        f"{type(aug).__name__}.get_transform takes variable-length arguments; "
                        "override __call__ or set input_args instead"
                    )
            names = tuple(name for name, _ in prms)
        aug.input_args = names
    args = []
    for f in aug.input_args:
        try:
            args.append(getattr(aug_input, f))
        except AttributeError as e:
            raise AttributeError(f"{aug}.get_transform() needs '{f}', which is not an attribute of {aug_input}") from e
    return args


class Augmentation:
    """A policy that makes a :class:`Transform` from the data (Detectron2 ``Augmentation``).

    Subclasses implement ``get_transform(self, image)`` or ``get_transform(self, image, sem_seg)``:
    ``image`` is (H, W) or (H, W, C), uint8 or float; ``sem_seg`` is (H, W) integer labels (or
    float holding integers).
    """

    #: names of the attributes of the input passed to get_transform; None = read its signature
    input_args: Optional[Tuple[str, ...]] = None

    def _init(self, params: Optional[dict] = None) -> None:
        if params:
            for k, v in params.items():
                if k != "self" and not k.startswith("_"):
                    setattr(self, k, v)

    def get_transform(self, *args: Any) -> Transform:
        """Decide the transform to apply, from the declared inputs."""
        raise NotImplementedError

    def __call__(self, aug_input: "AugInput") -> Transform:
        """Transform ``aug_input`` in place and return the transform used.

        Raises:
            TypeError: ``get_transform`` did not return a Transform.
        """
        args = _get_aug_input_args(self, aug_input)
        tfm = self.get_transform(*args)
        if not isinstance(tfm, (Transform, TransformList)):
            raise TypeError(f"{type(self).__name__}.get_transform must return a Transform; got {type(tfm).__name__}")
        aug_input.transform(tfm)
        return tfm

    def _rand_range(self, low: float = 1.0, high: Optional[float] = None, size=None):
        """Uniform float(s) in [low, high), or in [0, low) when ``high`` is None."""
        if high is None:
            low, high = 0, low
        if size is None:
            size = []
        return np.random.uniform(low, high, size)

    def __repr__(self) -> str:
        """``Name(arg=value, ...)`` for the constructor arguments that differ from their defaults."""
        try:
            sig = inspect.signature(self.__init__)
        except (TypeError, ValueError):
            return super().__repr__()
        argstr = []
        for name, param in sig.parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or not hasattr(self, name):
                return super().__repr__()
            attr = getattr(self, name)
            if param.default is attr:
                continue
            attr_str = pprint.pformat(attr)
            if "\n" in attr_str:
                attr_str = "..."
            argstr.append(f"{name}={attr_str}")
        return "{}({})".format(type(self).__name__, ", ".join(argstr))

    __str__ = __repr__


class _TransformToAug(Augmentation):
    def __init__(self, tfm: Transform):
        self.tfm = tfm

    def get_transform(self, *args: Any) -> Transform:
        return self.tfm

    def __repr__(self) -> str:
        return repr(self.tfm)

    __str__ = __repr__


def _transform_to_aug(tfm_or_aug: Union[Transform, Augmentation]) -> Augmentation:
    """Wrap a Transform so it can sit in a list of Augmentations."""
    if isinstance(tfm_or_aug, Augmentation):
        return tfm_or_aug
    if isinstance(tfm_or_aug, Transform):
        return _TransformToAug(tfm_or_aug)
    raise TypeError(f"Expected a Transform or an Augmentation; got {type(tfm_or_aug).__name__}")


class AugmentationList(Augmentation):
    """Apply a sequence of augmentations (or fixed transforms) in order."""

    def __init__(self, augs: Sequence[Union[Augmentation, Transform]]):
        super().__init__()
        self.augs = [_transform_to_aug(x) for x in augs]

    def __call__(self, aug_input: "AugInput") -> TransformList:
        return TransformList([x(aug_input) for x in self.augs])

    def __repr__(self) -> str:
        return "AugmentationList[{}]".format(", ".join(str(x) for x in self.augs))

    __str__ = __repr__


class AugInput:
    """The data augmentations act on: an image, optional boxes and an optional label map.

    Attributes:
        image: (H, W) or (H, W, C) ndarray, uint8 in [0, 255] or floating point.
        boxes: (N, 4) float ndarray in XYXY pixels, or None.
        sem_seg: (H, W) ndarray of class ids (any numeric dtype), or None.

    Usage::

        aug_input = AugInput(image, sem_seg=sem_seg)
        transforms = AugmentationList(augs)(aug_input)
        image, sem_seg = aug_input.image, aug_input.sem_seg
    """

    def __init__(self, image: np.ndarray, *, boxes: Optional[np.ndarray] = None, sem_seg: Optional[np.ndarray] = None):
        """
        Raises:
            TypeError / ValueError: ``image`` is not a uint8/float (H, W[, C]) ndarray.
        """
        _check_img_dtype(image)
        self.image = image
        self.boxes = boxes
        self.sem_seg = sem_seg

    def transform(self, tfm: Transform) -> None:
        """Apply ``tfm`` in place to every attribute that is set."""
        self.image = tfm.apply_image(self.image)
        if self.boxes is not None:
            self.boxes = tfm.apply_box(self.boxes)
        if self.sem_seg is not None:
            self.sem_seg = tfm.apply_segmentation(self.sem_seg)

    def apply_augmentations(self, augmentations: Sequence[Union[Augmentation, Transform]]) -> TransformList:
        """Apply ``augmentations`` in place; returns the TransformList that was applied."""
        return AugmentationList(augmentations)(self)


StandardAugInput = AugInput


def apply_augmentations(augmentations: Sequence[Union[Transform, Augmentation]], inputs):
    """Apply ``augmentations`` to ``inputs`` (an AugInput, or an image ndarray).

    Returns:
        (transformed inputs, TransformList): the AugInput itself (transformed in place), or the
        transformed image when an ndarray was given.
    """
    if isinstance(inputs, np.ndarray):
        image_only = True
        inputs = AugInput(inputs)
    else:
        image_only = False
    tfms = inputs.apply_augmentations(augmentations)
    return (inputs.image if image_only else inputs), tfms


#: alias kept for Detectron2 compatibility
apply_transform_gens = apply_augmentations

#: alias kept for Detectron2 compatibility
TransformGen = Augmentation
