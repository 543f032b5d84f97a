"""Which deformable-attention kernels a build produced and whether they load.

``python -m mask2former.devcheck.kernels --require cpu cuda --json FILE`` looks at the kernels the
package itself loads (an in-place build: ``mask2former/_C*.so``); with ``--lib-dir DIR`` it loads
the shared objects of a build made elsewhere (``setup.py build_ext -b DIR``) instead, in a process
that has not loaded the package's own. Writes ``{"cpu": {...}, "cuda": {...}, "problems": [...]}``;
the exit status is 1 when a required kernel is missing.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from typing import Dict, List, Optional

#: device -> the extension's file stem and the dispatch key its kernels register
EXTENSIONS = {"cpu": ("_C", "CPU"), "cuda": ("_C_cuda", "CUDA")}
#: an operator both extensions implement (the CPU one defines it)
KERNEL_OPERATOR = "mask2former_kernels::ms_deform_attn_forward"


def _files(folder: str, stem: str) -> List[str]:
    return sorted(glob.glob(os.path.join(folder, "mask2former", f"{stem}.*.so")))


def built_elsewhere(lib_dir: str) -> Dict[str, dict]:
    """Load the extensions found under ``lib_dir`` (CPU first: the CUDA one registers into its
    operators) and tell which dispatch keys have the kernel."""
    import torch

    status = {}
    for device, (stem, key) in EXTENSIONS.items():
        files = _files(lib_dir, stem)
        entry: dict = {"file": files[0] if files else None}
        if files:
            try:
                torch.ops.load_library(files[0])
                entry["available"] = torch._C._dispatch_has_kernel_for_dispatch_key(KERNEL_OPERATOR, key)
                entry["detail"] = "loaded" if entry["available"] else f"loaded, but no {key} kernel is registered"
            except (OSError, RuntimeError) as e:
                entry.update(available=False, detail=f"does not load: {type(e).__name__}: {e}")
        else:
            entry.update(available=False, detail=f"not built (no {stem}.*.so under {lib_dir}/mask2former)")
        status[device] = entry
    return status


def built_in_place(repo_root: str) -> Dict[str, dict]:
    """What the package loads (``mask2former.ops.kernel_status``) and the files it loads them from."""
    from mask2former.ops import kernel_status

    status = {}
    for device, (stem, _) in EXTENSIONS.items():
        available, detail = kernel_status(device)
        files = _files(repo_root, stem)
        status[device] = {"available": available, "detail": detail, "file": files[0] if files else None}
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--require", nargs="*", default=["cpu"], choices=sorted(EXTENSIONS))
    parser.add_argument("--lib-dir", help="a build's output folder (default: the package's own kernels)")
    parser.add_argument("--repo-root", default=os.getcwd())
    parser.add_argument("--json", required=True, help="where the result goes")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    status = built_elsewhere(args.lib_dir) if args.lib_dir else built_in_place(args.repo_root)
    problems = [f"the {d} kernel is unavailable: {status[d]['detail']}"
                for d in args.require if not status[d]["available"]]
    result = {**status, "required": args.require, "problems": problems}
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    for device, entry in status.items():
        print(f"{device}: {'available' if entry['available'] else 'unavailable'} - {entry['detail']} ({entry['file']})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
