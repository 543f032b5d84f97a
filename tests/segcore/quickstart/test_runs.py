"""segcore.quickstart.runs: the quickstart table, README's results table and the configs it names
(the runs themselves are tested through their command line, tests/tools/test_quickstart.py)."""
import pytest

from segcore.quickstart import runs


def test_the_readme_table_is_rendered_from_the_summaries_and_replaced_between_the_markers(tmp_path):
    summaries = [
        {"model": "maskformer", "task": "semantic", "config": "configs/quickstart/a.yaml", "mIoU": 92.24, "pACC": 96.4,
         "majority_class_mIoU": 1.94, "seconds": {"generate": 8.0, "train+eval": 306.4, "demo": 1.0},
         "total_seconds": 315.4},
        {"model": "mask2former", "task": "instance", "config": "configs/quickstart/b.yaml", "AP": 41.26, "AP50": 70.0,
         "AP75": 40.0, "seconds": {"generate": 0.1, "train+eval": 59.0, "demo": 2.0}, "total_seconds": 61.1},
    ]
    table = runs.render_results_table(summaries, "a test machine")
    rows = [line for line in table.splitlines() if line.startswith("| mask")]
    assert rows[0].startswith("| maskformer | semantic | `configs/quickstart/a.yaml` | 92.2 |")
    assert rows[0].endswith("| 5 min 06 s | 5 min 15 s |")
    assert "| 41.3 | 70.0 |" in rows[1] and rows[1].endswith("| 59 s | 1 min 01 s |")
    assert "a test machine" in table and "mIoU 1.9." in table

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{runs.README_BEGIN}\nold table\n{runs.README_END}\nrest\n")
    runs.update_readme(str(readme), table)
    text = readme.read_text()
    assert "old table" not in text and table in text and text.startswith("intro\n") and text.endswith("rest\n")
    runs.update_readme(str(readme), "second")  # idempotent: the markers stay
    assert text.count(runs.README_BEGIN) == 1 and "second" in readme.read_text() and table not in readme.read_text()
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="no"):
        runs.update_readme(str(readme), table)


def test_the_semask_quickstart_and_its_baseline_differ_only_by_the_semantic_layers():
    from segcore.engine import setup_cfg

    semask = setup_cfg(runs.quickstart_config("semask", "semantic")[0], [])
    baseline = setup_cfg(runs.quickstart_config("maskformer-swin", "semantic")[0], [])
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


def test_the_table_states_the_semask_ablation():
    def summary(model, miou):
        return {"model": model, "task": "semantic", "config": f"configs/quickstart/{model}.yaml", "mIoU": miou,
                "pACC": 90.0, "seconds": {"train+eval": 60.0}, "total_seconds": 61.0}

    table = runs.render_results_table([summary("maskformer-swin", 80.0), summary("semask", 78.75)], "m")
    assert "semask vs maskformer-swin" in table and "mIoU 78.8 vs 80.0, -1.2." in table
    assert "vs" not in runs.render_results_table([summary("semask", 78.75)], "m")




def test_every_quickstart_config_exists_and_unknown_ones_are_named():
    import os

    for model, task in runs.QUICKSTARTS:
        assert os.path.isfile(runs.quickstart_config(model, task)[0]), (model, task)
    with pytest.raises(KeyError, match="maskformer.*instance"):
        runs.quickstart_config("maskformer", "instance")
