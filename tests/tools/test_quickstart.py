"""tools/quickstart.py: the model x task quickstarts run end to end and summarize their metrics."""
import json
import os

import pytest

import segcore.data.quickstart as quickstart_package
from tests.e2e_utils import load_script

TINY = ["MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32", "MODEL.MASK_FORMER.HIDDEN_DIM", "32",
        "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "8", "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64",
        "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.CROP.SIZE", "(64, 64)", "INPUT.SIZE_DIVISIBILITY", "64",
        "INPUT.MIN_SIZE_TEST", "64", "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0",
        "SOLVER.MAX_ITER", "2", "MODEL.DEVICE", "cpu"]


@pytest.fixture
def quickstart(quickstart_root, monkeypatch):
    """tools/quickstart.py on the small shared dataset (its default generation is much larger)."""
    real = quickstart_package.generate_quickstart
    monkeypatch.setattr(quickstart_package, "generate_quickstart",
                        lambda root: real(root, num_train=6, num_val=3, size=80))
    return load_script("quickstart_cli", "tools/quickstart.py")


def test_mask2former_instance_quickstart_reports_mask_ap(quickstart, quickstart_root, tmp_path,
                                                          quickstart_panoptic_registered):
    out = tmp_path / "m2f_instance"
    summary = quickstart.main(["--model", "mask2former", "--task", "instance", "--datasets-root", str(quickstart_root),
                               "--output-dir", str(out), "--demo-images", "2", *TINY,
                               "MODEL.MASK_FORMER.DEC_LAYERS", "2", "MODEL.MASK_FORMER.TRAIN_NUM_POINTS", "256",
                               "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1"])
    assert (summary["model"], summary["task"]) == ("mask2former", "instance")
    assert {"AP", "AP50", "AP75"} <= set(summary) and "mIoU" not in summary
    assert all(0.0 <= summary[k] <= 100.0 for k in ("AP", "AP50", "AP75"))
    assert len(os.listdir(out / "demo")) == 2
    assert json.loads((out / "quickstart_summary.json").read_text())["AP"] == summary["AP"]


def test_maskformer_semantic_quickstart_reports_miou_and_the_majority_baseline(quickstart, quickstart_root,
                                                                                 tmp_path):
    out = tmp_path / "mf_semantic"
    summary = quickstart.main(["--datasets-root", str(quickstart_root), "--output-dir", str(out), "--demo-images",
                               "1", *TINY, "MODEL.MASK_FORMER.DEC_LAYERS", "2"])
    assert (summary["model"], summary["task"]) == ("maskformer", "semantic")
    assert {"mIoU", "pACC", "majority_class_mIoU"} <= set(summary) and "AP" not in summary
    assert 0.0 < summary["majority_class_mIoU"] < 20.0


def test_a_model_without_the_task_is_refused(quickstart):
    with pytest.raises(SystemExit):
        quickstart.main(["--model", "maskformer", "--task", "instance"])


def test_the_readme_table_is_rendered_from_the_summaries_and_replaced_between_the_markers(quickstart, tmp_path):
    summaries = [
        {"model": "maskformer", "task": "semantic", "config": "configs/quickstart/a.yaml", "mIoU": 92.24, "pACC": 96.4,
         "majority_class_mIoU": 1.94, "seconds": {"generate": 8.0, "train+eval": 306.4, "demo": 1.0},
         "total_seconds": 315.4},
        {"model": "mask2former", "task": "instance", "config": "configs/quickstart/b.yaml", "AP": 41.26, "AP50": 70.0,
         "AP75": 40.0, "seconds": {"generate": 0.1, "train+eval": 59.0, "demo": 2.0}, "total_seconds": 61.1},
    ]
    table = quickstart.render_results_table(summaries, "a test machine")
    rows = [line for line in table.splitlines() if line.startswith("| mask")]
    assert rows[0].startswith("| maskformer | semantic | `configs/quickstart/a.yaml` | 92.2 |")
    assert rows[0].endswith("| 5 min 06 s | 5 min 15 s |")
    assert "| 41.3 | 70.0 |" in rows[1] and rows[1].endswith("| 59 s | 1 min 01 s |")
    assert "a test machine" in table and "mIoU 1.9." in table

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{quickstart.README_BEGIN}\nold table\n{quickstart.README_END}\nrest\n")
    quickstart.update_readme(str(readme), table)
    text = readme.read_text()
    assert "old table" not in text and table in text and text.startswith("intro\n") and text.endswith("rest\n")
    quickstart.update_readme(str(readme), "second")  # idempotent: the markers stay
    assert text.count(quickstart.README_BEGIN) == 1 and "second" in readme.read_text() and table not in readme.read_text()
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="no"):
        quickstart.update_readme(str(readme), table)


def test_update_readme_needs_all(quickstart):
    with pytest.raises(SystemExit):
        quickstart.main(["--update-readme"])


def test_the_semask_quickstart_and_its_baseline_differ_only_by_the_semantic_layers(quickstart):
    from segcore.engine import setup_cfg

    semask = setup_cfg(quickstart.QUICKSTARTS[("semask", "semantic")][0], [])
    baseline = setup_cfg(quickstart.QUICKSTARTS[("maskformer-swin", "semantic")][0], [])
    differ = {k for k in _flat(semask) if _flat(semask)[k] != _flat(baseline).get(k)}
    assert differ == {"MODEL.META_ARCHITECTURE", "MODEL.BACKBONE.NAME", "MODEL.SEM_SEG_HEAD.NAME",
                      "MODEL.SWIN.SEM_WINDOW_SIZE", "OUTPUT_DIR"}
    assert (semask.MODEL.META_ARCHITECTURE, baseline.MODEL.META_ARCHITECTURE) == ("SeMaskMaskFormer", "MaskFormer")
    assert semask.MODEL.MASK_FORMER.CATE_WEIGHT > 0


def _flat(cfg, prefix=""):
    out = {}
    for k, v in cfg.items():
        if hasattr(v, "items"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_the_table_states_the_semask_ablation(quickstart):
    def summary(model, miou):
        return {"model": model, "task": "semantic", "config": f"configs/quickstart/{model}.yaml", "mIoU": miou,
                "pACC": 90.0, "seconds": {"train+eval": 60.0}, "total_seconds": 61.0}

    table = quickstart.render_results_table([summary("maskformer-swin", 80.0), summary("semask", 78.75)], "m")
    assert "semask vs maskformer-swin" in table and "mIoU 78.8 vs 80.0, -1.2." in table
    assert "vs" not in quickstart.render_results_table([summary("semask", 78.75)], "m")


def test_semask_quickstart_trains_the_semantic_prior(quickstart, quickstart_root, tmp_path):
    out = tmp_path / "semask"
    summary = quickstart.main(["--model", "semask", "--datasets-root", str(quickstart_root), "--output-dir", str(out),
                               "--demo-images", "1", *TINY, "MODEL.MASK_FORMER.DEC_LAYERS", "1",
                               "MODEL.SWIN.EMBED_DIM", "16", "MODEL.SWIN.DEPTHS", "[1, 1, 1, 1]"])
    assert (summary["model"], summary["task"]) == ("semask", "semantic") and 0.0 <= summary["mIoU"] <= 100.0
    records = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines() if line.strip()]
    assert any(r.get("loss_cate", 0.0) > 0.0 for r in records)  # the semantic-prior loss was trained
