#!/usr/bin/env python
"""Installs segcore (the Detectron2-style engine) and the model families.

torch is required as ``torch>=2.1`` with no upper bound, so installing this package keeps the
torch that is installed (a CPU or a CUDA build, older or newer); install torch first (see README.md).
Every package of the repository is found by ``find_packages`` (tests, tools and the dataset
scripts are not packages of the distribution).

Multi-scale deformable attention's compiled kernels (``mask2former/ops/csrc``) are built as
extensions when torch is importable at build time (``pip install --no-build-isolation``):
``mask2former._C``, the C++ CPU kernels, always; ``mask2former._C_cuda``, the CUDA kernels, when
torch is a CUDA build and a CUDA toolkit is found (``CUDA_HOME``). Environment variables:
``FORCE_CUDA=1`` builds the CUDA kernels even where that test fails (no GPU is needed to compile) and
makes any kernel build failure an error; ``MSDA_DISABLE_EXTENSION=1`` builds no kernel;
``TORCH_CUDA_ARCH_LIST`` (torch's) chooses the GPU architectures. Without a working compiler the
install still succeeds: a failed kernel build prints one line and mask2former uses the PyTorch
reference for what is missing (see DEVELOPING.md, "Deformable-attention kernels").
"""
import os
import subprocess
import sys

from setuptools import find_packages, setup
from setuptools.errors import BaseError as SetuptoolsError
from setuptools.errors import CCompilerError

KERNEL_SOURCES = os.path.join("mask2former", "ops", "csrc")

#: what a failed kernel build raises: the compiler or linker failing or missing (setuptools and
#: distutils errors, OSError), torch's ninja build (RuntimeError wrapping CalledProcessError), a CUDA
#: toolkit whose version does not match torch's (RuntimeError)
KERNEL_BUILD_ERRORS = (CCompilerError, SetuptoolsError, OSError, subprocess.CalledProcessError, RuntimeError)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "") == "1"


def _say(message: str) -> None:
    print(f"mask2former kernels: {message}", file=sys.stderr, flush=True)


def kernel_extensions():
    """(ext_modules, cmdclass) for the deformable-attention kernels; both empty when none is built."""
    if _env_flag("MSDA_DISABLE_EXTENSION"):
        _say("MSDA_DISABLE_EXTENSION=1: no kernel is built; the PyTorch reference will be used")
        return [], {}
    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
    except ImportError as e:
        _say(f"torch is not importable at build time ({e}); no kernel is built and the PyTorch reference will "
             "be used (install torch first, then this package with --no-build-isolation)")
        return [], {}

    linux = sys.platform.startswith("linux")
    # at::parallel_for is OpenMP in torch's Linux builds: without -fopenmp it would run serially
    openmp = ["-fopenmp"] if linux else []
    cxx_flags = ["-O3"] + openmp if os.name != "nt" else ["/O2"]
    header = os.path.join(KERNEL_SOURCES, "ms_deform_attn.h")
    extensions = [CppExtension(
        "mask2former._C",
        sources=[os.path.join(KERNEL_SOURCES, "register_cpu.cpp"),
                 os.path.join(KERNEL_SOURCES, "cpu", "ms_deform_attn_cpu.cpp")],
        depends=[header],
        extra_compile_args={"cxx": cxx_flags},
        extra_link_args=openmp,
    )]
    force_cuda = _env_flag("FORCE_CUDA")
    if (torch.version.cuda is not None or force_cuda) and CUDA_HOME is not None:
        extensions.append(CUDAExtension(
            "mask2former._C_cuda",
            sources=[os.path.join(KERNEL_SOURCES, "cuda", "register_cuda.cpp"),
                     os.path.join(KERNEL_SOURCES, "cuda", "ms_deform_attn_cuda.cu")],
            depends=[header],
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3"]},
        ))
    elif force_cuda:
        raise RuntimeError("FORCE_CUDA=1 but no CUDA toolkit was found: set CUDA_HOME")
    else:
        why = "torch is a CPU build" if torch.version.cuda is None else "no CUDA toolkit was found (CUDA_HOME)"
        _say(f"{why}: the CUDA kernels are not built")

    class BuildKernels(BuildExtension):
        """torch's BuildExtension, one extension at a time: a kernel that fails to build is left out
        with one line saying why (an error with FORCE_CUDA=1), and the install goes on."""

        def build_extensions(self):
            extensions, built = list(self.extensions), []
            compiler_state = {k: getattr(self.compiler, k) for k in ("compile", "_compile", "spawn", "compiler_so")
                              if hasattr(self.compiler, k)}
            src_extensions = list(self.compiler.src_extensions)
            for ext in extensions:
                # BuildExtension patches the compiler for the extensions it is given: one at a time,
                # each from the compiler's own state
                self.extensions = [ext]
                try:
                    super().build_extensions()
                    built.append(ext)
                except KERNEL_BUILD_ERRORS as e:
                    if force_cuda:
                        raise
                    reason = " ".join(str(e).split())[:300]
                    _say(f"building {ext.name} failed ({type(e).__name__}: {reason}); "
                         "multi-scale deformable attention will use the PyTorch reference instead")
                finally:
                    for k, v in compiler_state.items():
                        setattr(self.compiler, k, v)
                    self.compiler.src_extensions = list(src_extensions)
            # only what was built is copied into the package (editable installs) and recorded
            self.extensions = built

    return extensions, {"build_ext": BuildKernels}


ext_modules, cmdclass = kernel_extensions()

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
        # demo/app.py's web page (Gradio 6's Blocks API); the test extra holds the same requirement
        "app": ["gradio>=6.0,<7"],
        # the tests compare against Hugging Face's independent Swin and use every optional evaluator; they drive
        # demo/app.py's page in headless Chromium with Selenium (the browser itself: Debian's chromium and
        # chromium-driver, which .ci/run installs)
        # tools/deploy/export_model.py (ONNX: the dynamo-based exporter needs onnxscript; onnxruntime checks the file
        # and runs it in segcore.export.ExportedPredictor and tools/deploy/onnx_semantic.py)
        "export": ["onnx>=1.16", "onnxruntime>=1.17", "onnxscript>=0.2"],
        "test": ["pytest>=7", "hypothesis>=6.80", "transformers>=4.40", "cityscapesScripts>=2.2", "pyquaternion",
                 "faster-coco-eval>=1.6", "gradio>=6.0,<7", "selenium>=4.11",
                 "onnx>=1.16", "onnxruntime>=1.17", "onnxscript>=0.2"],
    },
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    entry_points={
        "segcore.model_families": [
            "mask_former = mask_former.config:FAMILY",
            "mask2former = mask2former.config:FAMILY",
            "semask = semask.config:FAMILY",
            "mask2former_video = mask2former_video.config:FAMILY",
        ],
    },
)
