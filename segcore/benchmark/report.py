"""A benchmark's report: the Markdown table, the profile and load-average lines, the JSON file,
and the latency plot of several reports.

A report is ``{"args": {"task", "config_file", "precision", ...}, "label", "machine",
"load_average_before", "load_average_after", "results": {implementation: entry, ...}}``: the
``results`` are what :func:`~.inference.run_inference`, :func:`~.training.run_train` or
:func:`~.data_loader.run_data` return.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Sequence, Tuple

__all__ = ["format_load_average", "format_profile", "format_table", "plot", "write_json"]


def format_table(report: dict) -> str:
    """A Markdown table of the report's implementations (columns by ``report["args"]["task"]``:
    inference latency per image with the pre / network / post split and peak memory, seconds per
    training iteration, or seconds per data-loader batch)."""
    rows = []
    task = report["args"]["task"]
    for name, entry in report["results"].items():
        if not isinstance(entry, dict):
            continue
        if task == "inference":
            split = ""
            if "network_median_s" in entry:
                split = (f"{entry['preprocess_median_s']:.3f} / {entry['network_median_s']:.3f} / "
                         f"{entry['postprocess_median_s']:.3f}")
            rows.append(f"| {name} | {entry['median_s']:.3f} | {entry['min_s']:.3f} | {entry['max_s']:.3f} | "
                        f"{entry['throughput_img_s']:.2f} | {split} | {entry['peak_memory_mb']:.0f} "
                        f"(+{entry['peak_memory_increase_mb']:.0f}) |")
        elif task == "train":
            rows.append(f"| {name} | {entry['median_s_per_iter']:.3f} | {entry['min_s_per_iter']:.3f} | "
                        f"{entry['max_s_per_iter']:.3f} | {entry['peak_memory_mb']:.0f} |")
        else:
            rows.append(f"| {name} | {entry['median_s_per_batch']:.3f} | {entry['images_per_s']:.1f} |")
    if task == "inference":
        head = ("| implementation | median s/img | min | max | img/s | pre / network / post (s) | peak MB (+call) |\n"
                "|---|---|---|---|---|---|---|")
    elif task == "train":
        head = "| implementation | median s/iter | min | max | peak MB |\n|---|---|---|---|---|"
    else:
        head = "| implementation | median s/batch | images/s |\n|---|---|---|"
    return "\n".join([head] + rows)


def format_profile(name: str, rows: Sequence[dict]) -> str:
    """The lines of one implementation's profile (:func:`~.profiling.profile_call`): share, seconds,
    calls and operator, one row a line, after a title line (preceded by an empty line)."""
    lines = [f"\nprofile of one call, {name} (self time):"]
    lines += [f"  {row['self_share']:6.1%} {row['self_s']:8.3f} s {row['calls']:6d}x {row['op']}" for row in rows]
    return "\n".join(lines)


def format_load_average(before: Sequence[float], after: Sequence[float]) -> str:
    """The system load averages (1, 5, 15 minutes) before and after the measurement, one line."""
    return (f"load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in before)}; "
            f"after: {', '.join(f'{x:.2f}' for x in after)}")


def write_json(report: dict, path: str) -> None:
    """Write the report as indented JSON (values JSON cannot hold as their ``str``), creating the folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=2, default=str)


def plot(json_files: Sequence[str], output: str) -> None:
    """A bar chart of the median inference latency per model and implementation (whiskers: min
    to max) from reports written by :func:`write_json`, written to ``output`` (PNG). Reports of
    other tasks are skipped; each report is a group labelled by its ``label`` (else the config's
    file name) and precision.

    Raises:
        ValueError: none of the files holds inference results.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: List[Tuple[str, Dict[str, dict]]] = []
    for path in json_files:
        with open(path) as f:
            report = json.load(f)
        if report["args"]["task"] != "inference":
            continue
        label = report.get("label") or os.path.splitext(os.path.basename(report["args"]["config_file"]))[0]
        label = label.replace(", ", "\n") + f"\n{report['args']['precision']}"  # one part per line
        groups.append((label, {k: v for k, v in report["results"].items() if isinstance(v, dict)}))
    if not groups:
        raise ValueError("no inference results in " + ", ".join(json_files))
    names = sorted({n for _, g in groups for n in g}, key=lambda n: (n != "this project", n))
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(6.0, 2.4 * len(groups)), 4.6))
    for j, name in enumerate(names):
        xs, ys, lo, hi = [], [], [], []
        for i, (_, g) in enumerate(groups):
            if name in g:
                e = g[name]
                xs.append(i + (j - (len(names) - 1) / 2) * width)
                ys.append(e["median_s"])
                lo.append(e["median_s"] - e["min_s"])
                hi.append(e["max_s"] - e["median_s"])
        bars = ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks(range(len(groups)), [g[0] for g in groups], fontsize=8)
    ax.set_ylabel("seconds per image, end to end (median; min-max)")
    ax.set_title("Inference latency, CPU, batch 1")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)
