"""Data flags of HJ 212-2017 Table 8, the flags every observation carries."""

from __future__ import annotations

from typing import Final

#: HJ 212-2017 Table 8: flag → (zh, en) meaning.
FLAGS: Final[dict[str, tuple[str, str]]] = {
    "N": ("正常", "normal"),
    "F": ("停运", "instrument stopped"),
    "M": ("维护", "maintenance"),
    "S": ("手工输入的设定值", "manually set value"),
    "D": ("故障", "fault"),
    "C": ("校准", "calibration"),
    "T": ("超测上限", "above the upper measuring limit"),
    "B": ("通讯异常", "communication fault between instrument and logger"),
}

#: Flag given to a reading that carries none.
DEFAULT_FLAG: Final = "N"


def is_valid_flag(flag: str) -> bool:
    """Whether ``flag`` is one of HJ 212-2017's data flags (Table 8)."""
    return flag in FLAGS
