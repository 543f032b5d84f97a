"""Model families compose: add only missing keys, idempotent, applied in dependency order."""
from importlib.metadata import EntryPoint

import pytest

from segcore.config import ConfigError, ModelFamily, add_config_defaults, get_cfg
from segcore.config import families as families_module


def _add_base(cfg):
    add_config_defaults(cfg, {"MODEL.MASK_FORMER.NHEADS": 8, "MODEL.MASK_FORMER.DECODER": "base",
                              "MODEL.MASK_FORMER.TEST.PANOPTIC_ON": False})


def _add_extension(cfg):
    # an extension that also names a key of the base with another default: the base's must win
    add_config_defaults(cfg, {"MODEL.MASK_FORMER.TRAIN_NUM_POINTS": 12544, "MODEL.MASK_FORMER.DECODER": "ext",
                              "MODEL.MASK_FORMER.TEST.INSTANCE_ON": False})


BASE = ModelFamily(name="base_family", add_config=_add_base)
EXTENSION = ModelFamily(name="a_extension", add_config=_add_extension, extends=("base_family",))
CYCLE_A = ModelFamily(name="cycle_a", add_config=_add_base, extends=("cycle_b",))
CYCLE_B = ModelFamily(name="cycle_b", add_config=_add_base, extends=("cycle_a",))
ORPHAN = ModelFamily(name="orphan", add_config=_add_base, extends=("not_installed",))


def _entry_point(attr: str, name: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"{__name__}:{attr}", group=families_module.ENTRY_POINT_GROUP)


def _install(monkeypatch, *eps):
    monkeypatch.setattr(families_module, "entry_points", lambda group: list(eps))


@pytest.mark.parametrize("reverse", [False, True])
def test_families_apply_in_dependency_order_whatever_the_declaration_order(monkeypatch, reverse):
    eps = [_entry_point("BASE", "base_family"), _entry_point("EXTENSION", "a_extension")]
    _install(monkeypatch, *(eps[::-1] if reverse else eps))
    cfg = get_cfg()
    # "a_extension" sorts before "base_family" by name, but extends it, so it comes after
    assert families_module.add_model_family_configs(cfg) == ["base_family", "a_extension"]
    assert cfg.MODEL.MASK_FORMER.DECODER == "base"
    assert cfg.MODEL.MASK_FORMER.TRAIN_NUM_POINTS == 12544 and cfg.MODEL.MASK_FORMER.NHEADS == 8
    assert set(cfg.MODEL.MASK_FORMER.TEST) == {"PANOPTIC_ON", "INSTANCE_ON"}


def test_both_orders_give_the_same_config(monkeypatch):
    dumps = []
    for eps in ([_entry_point("BASE", "base_family"), _entry_point("EXTENSION", "a_extension")],
                [_entry_point("EXTENSION", "a_extension"), _entry_point("BASE", "base_family")]):
        _install(monkeypatch, *eps)
        cfg = get_cfg()
        families_module.add_model_family_configs(cfg)
        dumps.append(cfg.dump())
    assert dumps[0] == dumps[1]


def test_adding_a_family_twice_changes_nothing():
    from mask_former import add_mask_former_config

    once, twice = get_cfg(), get_cfg()
    add_mask_former_config(once)
    add_mask_former_config(twice)
    twice.MODEL.MASK_FORMER.NHEADS = 3  # a value set by a file
    add_mask_former_config(twice)
    assert twice.MODEL.MASK_FORMER.NHEADS == 3
    twice.MODEL.MASK_FORMER.NHEADS = once.MODEL.MASK_FORMER.NHEADS
    assert once.dump() == twice.dump()


def test_a_family_keeps_the_engine_defaults():
    from mask_former import add_mask_former_config

    cfg = get_cfg()
    add_mask_former_config(cfg)
    # MaskFormer's own defaults for these engine keys ("ADAMW", "mask_former_semantic") do not
    # apply to configs of other families: the engine's stay
    assert cfg.SOLVER.OPTIMIZER == get_cfg().SOLVER.OPTIMIZER == "SGD"
    assert cfg.INPUT.DATASET_MAPPER_NAME == get_cfg().INPUT.DATASET_MAPPER_NAME == ""
    # its new keys are there
    assert cfg.SOLVER.BACKBONE_MULTIPLIER == 0.1 and cfg.MODEL.SWIN.EMBED_DIM == 96
    assert cfg.MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME == "StandardTransformerDecoder"


def test_installed_families_include_mask_former():
    names = [f.name for f in families_module.get_model_families()]
    assert "mask_former" in names


def test_dependency_errors_name_the_families(monkeypatch):
    _install(monkeypatch, _entry_point("ORPHAN", "orphan"))
    with pytest.raises(RuntimeError, match="orphan.*not_installed"):
        families_module.get_model_families()
    _install(monkeypatch, _entry_point("CYCLE_A", "cycle_a"), _entry_point("CYCLE_B", "cycle_b"))
    with pytest.raises(RuntimeError, match="cycle"):
        families_module.get_model_families()
    _install(monkeypatch, _entry_point("BASE", "other_name"))
    with pytest.raises(RuntimeError, match="base_family"):
        families_module.get_model_families()
    _install(monkeypatch)
    with pytest.raises(RuntimeError, match="No model family"):
        families_module.add_model_family_configs(get_cfg())


def test_a_bare_config_function_is_a_family_that_extends_nothing(monkeypatch):
    _install(monkeypatch, _entry_point("_add_base", "legacy"))
    [fam] = families_module.get_model_families()
    assert fam.name == "legacy" and fam.extends == () and fam.add_config is _add_base


def test_add_config_defaults_adds_only_missing_keys_and_reports_them():
    cfg = get_cfg()
    added = add_config_defaults(cfg, {"SOLVER.BASE_LR": 123.0, "MODEL.NEW_NODE.KEY": 1, "MODEL.NEW_NODE.OTHER": [1, 2]})
    assert added == ["MODEL.NEW_NODE.KEY", "MODEL.NEW_NODE.OTHER"]
    assert cfg.SOLVER.BASE_LR == get_cfg().SOLVER.BASE_LR
    assert add_config_defaults(cfg, {"MODEL.NEW_NODE.KEY": 2}) == [] and cfg.MODEL.NEW_NODE.KEY == 1


def test_add_config_defaults_refuses_structural_conflicts():
    cfg = get_cfg()
    with pytest.raises(ConfigError, match="SOLVER.BASE_LR"):
        add_config_defaults(cfg, {"SOLVER.BASE_LR.SUB": 1})
    with pytest.raises(ConfigError, match="SOLVER.BASE_LR"):
        add_config_defaults(cfg, {"SOLVER.BASE_LR": {"SUB": 1}})

