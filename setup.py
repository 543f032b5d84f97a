#!/usr/bin/env python
"""Installs segcore (the Detectron2-style engine) and the model families.

torch is required as ``torch>=2.1`` with no upper bound, so installing this package keeps the
torch that is installed (a CPU or a CUDA build, older or newer); install torch first (see README.md).
Every package of the repository is found by ``find_packages`` (tests, tools and the dataset
scripts are not packages of the distribution).
"""
from setuptools import find_packages, setup

setup(
    name="mask-classification-seg",
    version="0.1.0",
    description="MaskFormer, Mask2Former and SeMask in one Detectron2-style codebase",
    python_requires=">=3.10",
    packages=find_packages(exclude=["tests", "tests.*"]),
    package_data={"segcore": ["data/categories/*.json"]},
    install_requires=[
        "torch>=2.1",
        "fvcore>=0.1.5",
        "iopath>=0.1.9",
        "pycocotools>=2.0.6",
        "scipy>=1.10",
        "opencv-python-headless>=4.8",
        "numpy>=1.24",
        "pillow>=9.0",
        "pyyaml>=6.0",
        "tqdm>=4.60",
        "tabulate>=0.9",
        "termcolor>=2.0",
        "tensorboard>=2.12",
        "scikit-image>=0.21",
        "matplotlib>=3.7",
    ],
    extras_require={
        # Cityscapes evaluation (cityscapesscripts); a faster COCO AP implementation
        "cityscapes": ["cityscapesScripts>=2.2", "pyquaternion"],
        "fast-coco": ["faster-coco-eval>=1.6"],
        # the tests compare against Hugging Face's independent Swin and use every optional evaluator
        "test": ["pytest>=7", "transformers>=4.40", "cityscapesScripts>=2.2", "pyquaternion", "faster-coco-eval>=1.6"],
    },
    entry_points={
        "segcore.model_families": [
            "mask_former = mask_former.config:FAMILY",
            "mask2former = mask2former.config:FAMILY",
            "semask = semask.config:FAMILY",
        ],
    },
)
