"""The device check of this project, as a plan for :mod:`segcore.devcheck`: what a lent GPU machine
(one H100, about 15 minutes in all, no network) must prove in one call of ``tools/device_check.py``.

Phases (``--list`` prints the steps with their commands and limits):

1. ``prepare``, at once: ``metadata``, where the project is not installed, its package metadata
   written into the work folder (the model families' entry points); ``build``, the CPU and CUDA
   kernels built in place for this GPU's architecture (``FORCE_CUDA=1``, ``TORCH_CUDA_ARCH_LIST`` from
   the device, ``MAX_JOBS`` = cores), then checked to load; ``dataset``, the quickstart dataset
   generated.
2. ``checks``, all at once (nothing in them is timed): ``kernel_tests``, the kernels' CUDA tests
   (``pytest tests/mask2former/ops -k cuda``: kernel against reference forward and backward in
   float64, float32, float16 and bfloat16, border and outside locations, levels of very different
   sizes, many heads, gradcheck, bounds checks, ``torch.compile``), a skipped test counting as a
   failure; ``reference``, Mask2Former R50 ADE20K against the original's measured outputs on the GPU
   with TF32 off (``tests/mask2former/devcheck/test_parity_on_device.py``); ``distributed``, a
   one-process NCCL group, this project's collectives and DDP training steps
   (:mod:`mask2former.devcheck.distributed`); ``train_fp16`` / ``train_bf16``, the Mask2Former
   quickstart trained through ``train_net.py --num-gpus 1`` with ``SOLVER.AMP.ENABLED True`` in float16
   (loss scaling) and bfloat16, then evaluated: losses finite and falling, the mIoU reported.
3. ``benchmarks``, one at a time, most wanted first, each skipped when the budget no longer holds it:
   the deformable-attention op alone (kernel, reference, Hugging Face's ``grid_sample`` path:
   :mod:`mask2former.devcheck.op_benchmark`); ``tools/benchmark.py`` inference of Mask2Former R50 and
   Swin-T COCO panoptic (semantic, panoptic and instance outputs) on 800 x 1333 images against the
   Hugging Face port in the same run, float32, bfloat16 and ``TEST.COMPILE``, batch 1 and 8; and the
   R50 training step at batch 2 and 8 in float32 and bfloat16 AMP.

With ``--cpu`` (a machine without a GPU) the same steps run where they need no GPU, on the CPU with
tiny sizes, so that the check itself is tested there: the CPU kernel built into the work folder (the
checkout's own is left alone), the CPU kernel's tests, the reference on the CPU, gloo in place of
NCCL, bfloat16 AMP training of a tiny model for a few iterations, one benchmark of each kind.
"""
from __future__ import annotations

import glob
import importlib.metadata as metadata
import importlib.util
import os
import pathlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from segcore.config.families import ENTRY_POINT_GROUP
from segcore.devcheck import Plan, Step, StepRun, Verdict
from segcore.devcheck.context import CheckContext
from segcore.devcheck.evaluators import (make_benchmark_evaluator, make_json_evaluator, make_junit_evaluator,
                                         make_training_evaluator)

__all__ = ["GPU_SIZES", "CPU_SIZES", "QUICKSTART_GENERATORS", "Sizes", "build_plan", "quickstart_generator_command"]

#: the quickstart dataset generator's module, first importable wins (it is moving out of segcore.data)
QUICKSTART_GENERATORS = ("segcore.quickstart.generate", "segcore.data.quickstart.generate")
QUICKSTART_CONFIG = os.path.join("configs", "quickstart", "mask2former_R18_quickstart.yaml")
BENCHMARK_CONFIGS = {
    "r50": os.path.join("configs", "coco", "panoptic-segmentation", "maskformer2_R50_bs16_50ep.yaml"),
    "swint": os.path.join("configs", "coco", "panoptic-segmentation", "swin", "maskformer2_swin_tiny_bs16_50ep.yaml"),
    "tiny": QUICKSTART_CONFIG,
}
MODEL_NAMES = {"r50": "Mask2Former R50 COCO panoptic", "swint": "Mask2Former Swin-T COCO panoptic",
               "tiny": "the tiny quickstart Mask2Former"}
KERNEL_TESTS = os.path.join("tests", "mask2former", "ops")
REFERENCE_TEST = os.path.join("tests", "mask2former", "devcheck", "test_parity_on_device.py")
#: the device the reference test runs on (it reads this variable)
REFERENCE_DEVICE_ENV = "SEGCORE_DEVCHECK_DEVICE"
#: tools/benchmark.py's precision names
_PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
#: makes the quickstart model tiny (the --cpu check): 32 wide, 10 queries, one encoder layer, 64-pixel images
TINY_MODEL = {"MODEL.SEM_SEG_HEAD.CONVS_DIM": "32", "MODEL.SEM_SEG_HEAD.MASK_DIM": "32",
              "MODEL.MASK_FORMER.HIDDEN_DIM": "32", "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES": "10",
              "MODEL.MASK_FORMER.DIM_FEEDFORWARD": "64", "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS": "1",
              "MODEL.MASK_FORMER.TRAIN_NUM_POINTS": "256", "INPUT.MIN_SIZE_TRAIN": "(64,)",
              "INPUT.CROP.SIZE": "(64, 64)", "INPUT.SIZE_DIVISIBILITY": "64", "INPUT.MIN_SIZE_TEST": "64",
              "SOLVER.IMS_PER_BATCH": "2"}


@dataclass(frozen=True)
class Benchmark:
    """One ``tools/benchmark.py`` run: task, model key of :data:`BENCHMARK_CONFIGS`, precision
    (``fp32`` / ``bf16``), compiled or not, batch size, and its limits."""

    task: str
    model: str
    precision: str
    compile: bool
    batch: int
    timeout_s: float
    min_s: float

    @property
    def name(self) -> str:
        mode = "compile" if self.compile else self.precision
        return f"bench_{'infer' if self.task == 'inference' else 'train'}_{self.model}_{mode}_b{self.batch}"


@dataclass(frozen=True)
class Sizes:
    """How much each step does, per mode (GPU or ``--cpu``)."""

    dataset: Tuple[int, int, int]           # training images, validation images, longer side (pixels)
    train_precisions: Tuple[str, ...]       # SOLVER.AMP.PRECISION of the training runs
    train_iters: int
    train_workers: int
    expect_falling: bool                    # enough iterations to see the loss fall
    model_overrides: Dict[str, str]         # on the quickstart config (training, distributed, benchmarks)
    kernel_tests: Tuple[str, ...]           # pytest's selection
    distributed_steps: int
    op_benchmark: Tuple[int, int, Tuple[str, ...], int]  # size, batch, dtypes, repeats
    inference_size: Tuple[int, int]
    inference_iters: Dict[int, Tuple[int, int]]  # batch -> (iters, warmup)
    train_size: Tuple[int, int]
    train_iters_bench: Tuple[int, int]      # tools/benchmark.py --task train: iters, warmup
    benchmarks: Tuple[Benchmark, ...]
    timeouts: Dict[str, Tuple[float, float]]  # step -> (limit, least time worth starting it with)


def _gpu_benchmarks() -> Tuple[Benchmark, ...]:
    """The benchmark matrix, most wanted first (the budget cuts from the end)."""
    runs = [Benchmark(task, model, p, False, batch, 120, 25)
            for task, model, batch in (("inference", "r50", 1), ("train", "r50", 2), ("inference", "swint", 1))
            for p in ("fp32", "bf16")]
    runs += [Benchmark("inference", m, p, False, 8, 150, 35) for m in ("r50", "swint") for p in ("fp32", "bf16")]
    runs += [Benchmark("train", "r50", p, False, 8, 150, 35) for p in ("fp32", "bf16")]
    runs += [Benchmark("inference", m, "fp32", True, b, 240, 90) for b in (1, 8) for m in ("r50", "swint")]
    return tuple(runs)


GPU_SIZES = Sizes(
    dataset=(64, 16, 224), train_precisions=("float16", "bfloat16"), train_iters=200, train_workers=4,
    expect_falling=True, model_overrides={}, kernel_tests=(KERNEL_TESTS, "-k", "cuda"), distributed_steps=3,
    op_benchmark=(1024, 1, ("float32", "bfloat16"), 10), inference_size=(800, 1333),
    inference_iters={1: (10, 3), 8: (4, 2)}, train_size=(1024, 1024), train_iters_bench=(5, 3),
    benchmarks=_gpu_benchmarks(),
    timeouts={"build": (300, 60), "dataset": (180, 20), "kernel_tests": (240, 30), "reference": (180, 30),
              "distributed": (120, 20), "train": (300, 60), "bench_op": (120, 20)})
CPU_SIZES = Sizes(
    dataset=(6, 3, 80), train_precisions=("bfloat16",), train_iters=2, train_workers=0, expect_falling=False,
    model_overrides=TINY_MODEL,
    kernel_tests=(os.path.join(KERNEL_TESTS, "test_ms_deform_attn_kernels.py"), "-k",
                  "cpu_kernel_is_built or cpu_kernel_on_pixel"),
    distributed_steps=1, op_benchmark=(64, 1, ("float32",), 2), inference_size=(64, 96), inference_iters={1: (1, 1)},
    train_size=(64, 64), train_iters_bench=(1, 1),
    benchmarks=(Benchmark("inference", "tiny", "fp32", False, 1, 300, 20),
                Benchmark("train", "tiny", "fp32", False, 2, 300, 20)),
    timeouts={"build": (600, 60), "dataset": (180, 10), "kernel_tests": (300, 20), "reference": (600, 30),
              "distributed": (300, 20), "train": (600, 30), "bench_op": (300, 20)})


def quickstart_generator_command(python: str, root: str, dataset: Tuple[int, int, int]) -> List[str]:
    """The command that writes the quickstart dataset under ``root``: the one place that names the
    generator (:data:`QUICKSTART_GENERATORS`)."""
    module = next((m for m in QUICKSTART_GENERATORS if _importable(m)), QUICKSTART_GENERATORS[0])
    num_train, num_val, size = dataset
    return [python, "-m", module, "--root", root, "--num-train", str(num_train), "--num-val", str(num_val),
            "--size", str(size)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package that is gone
        return False


def _opts(overrides: Dict[str, str]) -> List[str]:
    return [item for key, value in overrides.items() for item in (key, value)]


def _limits(sizes: Sizes, key: str) -> Dict[str, float]:
    timeout_s, min_s = sizes.timeouts[key]
    return {"timeout_s": timeout_s, "min_s": min_s}


# --------------------------------------------------------------------------- prepare
def build_step(ctx: CheckContext, sizes: Sizes) -> Step:
    """The kernels built (in place on a GPU machine; into the work folder with ``--cpu``), then checked."""
    py = ctx.python
    commands = []
    result = ctx.work("kernels.json")
    if ctx.cpu:
        lib = ctx.work("build", "lib")
        commands.append([py, "setup.py", "build_ext", "--build-lib", lib, "--build-temp", ctx.work("build", "temp")])
        commands.append([py, "-m", "mask2former.devcheck.kernels", "--lib-dir", lib, "--require", "cpu",
                         "--json", result])
        env: Dict[str, Optional[str]] = {"FORCE_CUDA": None, "MSDA_DISABLE_EXTENSION": None}
        title = "the C++ CPU kernel built (into the work folder) and loaded"
    else:
        commands.append([py, "setup.py", "build_ext", "--inplace"])
        commands.append([py, "-m", "mask2former.devcheck.kernels", "--require", "cpu", "cuda", "--json", result])
        env = {"FORCE_CUDA": "1", "TORCH_CUDA_ARCH_LIST": ctx.gpu_arch, "MAX_JOBS": str(ctx.jobs),
               "MSDA_DISABLE_EXTENSION": None}
        title = f"the CPU and CUDA kernels built in place for sm {ctx.gpu_arch} and loaded"

    def describe(found: dict) -> str:
        return ", ".join(f"{d} kernel {'loads' if found[d]['available'] else 'MISSING'}" for d in ("cpu", "cuda")
                         if d in found.get("required", []) or found[d]["available"])

    return Step("build", title, "prepare", commands, env=env, evaluate=make_json_evaluator(result, describe),
                **_limits(sizes, "build"))


def metadata_step(ctx: CheckContext) -> Step:
    """The project's package metadata written to ``ctx.metadata_dir`` (on every command's
    ``PYTHONPATH``), for a checkout that was not installed: the model families' entry points, without
    which no config has their keys. No kernel is built here (``MSDA_DISABLE_EXTENSION=1``)."""
    os.makedirs(ctx.metadata_dir, exist_ok=True)

    def evaluate(run: StepRun) -> Verdict:
        families = sorted(entry.name for folder in glob.glob(os.path.join(ctx.metadata_dir, "*.egg-info"))
                          for entry in metadata.PathDistribution(pathlib.Path(folder)).entry_points
                          if entry.group == ENTRY_POINT_GROUP)
        if run.returncode != 0 or not families:
            return Verdict(problems=[f"no {ENTRY_POINT_GROUP} entry points were written to {ctx.metadata_dir}"])
        return Verdict(details={"families": families}, headline=f"model families: {', '.join(families)}")

    return Step("metadata", "the package metadata (the model families' entry points) of the uninstalled checkout",
                "prepare", [[ctx.python, "setup.py", "-q", "egg_info", "--egg-base", ctx.metadata_dir]],
                env={"MSDA_DISABLE_EXTENSION": "1", "FORCE_CUDA": None}, evaluate=evaluate, timeout_s=120, min_s=10)


def _families(ctx: CheckContext) -> Tuple[str, ...]:
    """What a step that builds a model from a config needs first."""
    return ("metadata",) if ctx.needs_metadata else ()


def dataset_step(ctx: CheckContext, sizes: Sizes) -> Step:
    num_train, num_val, size = sizes.dataset
    root = ctx.work("datasets")

    def evaluate(run: StepRun) -> Verdict:
        if run.returncode != 0:
            return Verdict(problems=[f"exit code {run.returncode}"])
        return Verdict(details={"root": root},
                       headline=f"{num_train} training and {num_val} validation images, {size} px")

    return Step("dataset", "the quickstart dataset generated", "prepare",
                [quickstart_generator_command(ctx.python, root, sizes.dataset)], evaluate=evaluate,
                **_limits(sizes, "dataset"))


# --------------------------------------------------------------------------- checks
def _pytest(ctx: CheckContext, junit: str, selection: Sequence[str]) -> List[str]:
    return [ctx.python, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *selection, f"--junitxml={junit}"]


def kernel_tests_step(ctx: CheckContext, sizes: Sizes) -> Step:
    junit = ctx.work("kernel_tests.xml")
    title = ("the CUDA kernel against the PyTorch reference: values, gradients, gradcheck, bounds checks, "
             "torch.compile (pytest -k cuda)" if not ctx.cpu else "the C++ CPU kernel against the PyTorch reference")
    # on a GPU machine every CUDA test must run: a skip means the GPU or the kernel was not found
    return Step("kernel_tests", title, "checks", [_pytest(ctx, junit, sizes.kernel_tests)],
                evaluate=make_junit_evaluator(junit, allow_skips=False), **_limits(sizes, "kernel_tests"))


def _describe_reference(counts: dict) -> str:
    props = next(iter(counts.get("properties", {}).values()), {})
    if not props:
        return ""
    f = {k: float(props[k]) for k in ("final_logits", "aux0_logits", "final_masks", "aux0_masks", "ties")}
    return (f"on {props.get('device')}: max |diff| logits {f['final_logits']:.1e} (aux0 {f['aux0_logits']:.1e}), "
            f"masks {f['final_masks']:.1e} (aux0 {f['aux0_masks']:.1e}); tolerances 1e-4 / 1e-3; "
            f"{int(f['ties'])} tie queries")


def reference_step(ctx: CheckContext, sizes: Sizes) -> Step:
    junit = ctx.work("reference.xml")
    where = "on the GPU, TF32 off" if not ctx.cpu else "on the CPU"
    return Step("reference", f"Mask2Former R50 ADE20K against the original's outputs {where} (input A, name-seeded "
                             "weights)", "checks", [_pytest(ctx, junit, [REFERENCE_TEST])],
                env={REFERENCE_DEVICE_ENV: ctx.device}, needs=_families(ctx),
                evaluate=make_junit_evaluator(junit, allow_skips=False, describe=_describe_reference),
                **_limits(sizes, "reference"))


def _dataset_env(ctx: CheckContext) -> Dict[str, Optional[str]]:
    return {"DETECTRON2_DATASETS": ctx.work("datasets")}


def distributed_step(ctx: CheckContext, sizes: Sizes) -> Step:
    result = ctx.work("distributed.json")
    backend = "gloo" if ctx.cpu else "nccl"
    command = [ctx.python, "-m", "mask2former.devcheck.distributed", "--device", ctx.device, "--backend", backend,
               "--config-file", QUICKSTART_CONFIG, "--steps", str(sizes.distributed_steps), "--json", result,
               "--opts", "DATALOADER.NUM_WORKERS", "0", *_opts(sizes.model_overrides)]

    def describe(r: dict) -> str:
        ok = [k for k, v in r.get("collectives", {}).items() if v is True]
        losses = r.get("losses", [])
        return (f"{r['backend']}, one process: {', '.join(ok)} ok; {len(losses)} DDP steps"
                + (f", loss {losses[0]:.3g} -> {losses[-1]:.3g}" if losses else ""))

    return Step("distributed", f"a one-process {backend} group: collectives and DDP training steps", "checks",
                [command], env=_dataset_env(ctx), needs=("dataset", *_families(ctx)),
                evaluate=make_json_evaluator(result, describe),
                **_limits(sizes, "distributed"))


def training_step(ctx: CheckContext, sizes: Sizes, precision: str) -> Step:
    output = ctx.work(f"train_{precision}")
    short = {"float16": "fp16", "bfloat16": "bf16"}[precision]
    command = [ctx.python, "train_net.py", "--config-file", QUICKSTART_CONFIG, "--num-gpus", "1",
               "MODEL.DEVICE", ctx.device, "SOLVER.MAX_ITER", str(sizes.train_iters), "SOLVER.AMP.ENABLED", "True",
               "SOLVER.AMP.PRECISION", precision, "TEST.EVAL_PERIOD", "0", "SOLVER.CHECKPOINT_PERIOD", "1000000",
               "DATALOADER.NUM_WORKERS", str(sizes.train_workers), "OUTPUT_DIR", output, *_opts(sizes.model_overrides)]
    scaling = " with loss scaling" if precision == "float16" else ""
    return Step(f"train_{short}", f"the Mask2Former quickstart trained in {precision} AMP{scaling} "
                                  "(train_net.py --num-gpus 1), then evaluated", "checks", [command],
                env=_dataset_env(ctx), needs=("dataset", *_families(ctx)),
                evaluate=make_training_evaluator(output, expect_falling=sizes.expect_falling,
                                                 min_iterations=sizes.train_iters),
                **_limits(sizes, "train"))


# --------------------------------------------------------------------------- benchmarks
def op_benchmark_step(ctx: CheckContext, sizes: Sizes) -> Step:
    result = ctx.work("bench_op.json")
    size, batch, dtypes, repeats = sizes.op_benchmark
    command = [ctx.python, "-m", "mask2former.devcheck.op_benchmark", "--device", ctx.device, "--size", str(size),
               "--batch", str(batch), "--dtypes", *dtypes, "--repeats", str(repeats), "--json", result]

    def describe(r: dict) -> str:
        rows = {(x["dtype"], x["mode"], x["impl"]): x["median_ms"] for x in r.get("results", [])}
        parts = []
        for dtype in dtypes:
            for mode, short in (("forward", "fwd"), ("forward_backward", "fwd+bwd")):
                times = "/".join(f"{rows[(dtype, mode, i)]:.2f}" for i in ("kernel", "reference", "hf")
                                 if (dtype, mode, i) in rows)
                parts.append(f"{dtype} {short} {times}")
        return "ms kernel/reference/HF: " + "; ".join(parts)

    return Step("bench_op", f"deformable attention alone at {size} x {size}: kernel, reference, Hugging Face",
                "benchmarks", [command], evaluate=make_json_evaluator(result, describe), **_limits(sizes, "bench_op"))


def benchmark_step(ctx: CheckContext, sizes: Sizes, bench: Benchmark) -> Step:
    result = ctx.work(f"{bench.name}.json")
    command = [ctx.python, os.path.join("tools", "benchmark.py"), "--config-file", BENCHMARK_CONFIGS[bench.model],
               "--task", bench.task, "--device", ctx.device, "--batch-size", str(bench.batch),
               "--precision", bench.precision, "--json", result]
    if bench.task == "inference":
        iters, warmup = sizes.inference_iters[bench.batch]
        command += ["--input-size", *map(str, sizes.inference_size), "--compare", "hf"]
        what = f"inference, {sizes.inference_size[0]} x {sizes.inference_size[1]}, against Hugging Face"
    else:
        iters, warmup = sizes.train_iters_bench
        command += ["--input-size", *map(str, sizes.train_size)]
        what = f"a training step, {sizes.train_size[0]} x {sizes.train_size[1]}"
    command += ["--iters", str(iters), "--warmup", str(warmup)]
    if bench.compile:
        command.append("--compile")
    if bench.model == "tiny":
        command += ["--opts", "DATALOADER.NUM_WORKERS", "0", *_opts(sizes.model_overrides)]
    mode = "TEST.COMPILE" if bench.compile else _PRECISIONS[bench.precision]
    return Step(bench.name, f"{MODEL_NAMES[bench.model]}: {what}, {mode}, batch {bench.batch}", "benchmarks", [command],
                timeout_s=bench.timeout_s, min_s=bench.min_s, needs=_families(ctx),
                evaluate=make_benchmark_evaluator(result))


def build_plan(ctx: CheckContext) -> Plan:
    """The device check's steps for ``ctx`` (GPU, or ``--cpu``)."""
    sizes = CPU_SIZES if ctx.cpu else GPU_SIZES
    steps = [*([metadata_step(ctx)] if ctx.needs_metadata else []), build_step(ctx, sizes), dataset_step(ctx, sizes),
             kernel_tests_step(ctx, sizes), reference_step(ctx, sizes),
             distributed_step(ctx, sizes), *[training_step(ctx, sizes, p) for p in sizes.train_precisions],
             op_benchmark_step(ctx, sizes), *[benchmark_step(ctx, sizes, b) for b in sizes.benchmarks]]
    # two CPU cores cannot run the checks side by side; a GPU machine's 16 cores and one GPU can
    # (nothing there is timed)
    return Plan(steps, parallel={"prepare": 3, "checks": 1 if ctx.cpu else 5, "benchmarks": 1})
