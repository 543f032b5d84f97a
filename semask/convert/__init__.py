"""Converting the SeMask releases' checkpoints: :mod:`.semask_fpn` renames a SeMask-FPN
(mmsegmentation 0.x) checkpoint to this project's names (``tools/convert-semask-fpn-to-d2.py``)."""
from .semask_fpn import AUTHOR, NAME_RULES, convert_semask_fpn_state_dict, load_mmseg_state_dict, map_name

__all__ = ["AUTHOR", "NAME_RULES", "convert_semask_fpn_state_dict", "load_mmseg_state_dict", "map_name"]
