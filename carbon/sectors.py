"""Names of the IPCC 2006 source categories a facility's ``sector`` names (pure, no I/O).

``label("1.A.1.a")`` → ``公用电力和热力生产 Public electricity and heat production (1.A.1.a)``;
a code without a name of its own is named after its nearest named parent
(``1.A.2.g.viii`` → ``制造业和建筑业 Manufacturing industries and construction (1.A.2.g.viii)``).
"""

from __future__ import annotations

from typing import Final

#: IPCC 2006 category code → (Chinese, English) name
NAMES: Final[dict[str, tuple[str, str]]] = {
    "1": ("能源", "Energy"),
    "1.A": ("燃料燃烧", "Fuel combustion"),
    "1.A.1": ("能源工业", "Energy industries"),
    "1.A.1.a": ("公用电力和热力生产", "Public electricity and heat production"),
    "1.A.1.b": ("石油炼制", "Petroleum refining"),
    "1.A.1.c": ("固体燃料制造和其他能源工业", "Solid fuels and other energy industries"),
    "1.A.2": ("制造业和建筑业", "Manufacturing industries and construction"),
    "1.A.2.a": ("钢铁", "Iron and steel"),
    "1.A.2.b": ("有色金属", "Non-ferrous metals"),
    "1.A.2.c": ("化工", "Chemicals"),
    "1.A.2.d": ("纸浆、造纸和印刷", "Pulp, paper and print"),
    "1.A.2.e": ("食品加工、饮料和烟草", "Food processing, beverages and tobacco"),
    "1.A.2.f": ("非金属矿物", "Non-metallic minerals"),
    "1.A.3": ("交通运输", "Transport"),
    "1.A.4": ("其他部门", "Other sectors"),
    "1.A.4.a": ("商业和公共机构", "Commercial and institutional"),
    "1.A.4.b": ("居民生活", "Residential"),
    "1.A.4.c": ("农林牧渔业", "Agriculture, forestry and fishing"),
    "1.B": ("燃料逃逸排放", "Fugitive emissions from fuels"),
    "2": ("工业生产过程和产品使用", "Industrial processes and product use"),
    "2.A": ("非金属矿物工业", "Mineral industry"),
    "2.A.1": ("水泥生产", "Cement production"),
    "2.A.2": ("石灰生产", "Lime production"),
    "2.A.3": ("玻璃生产", "Glass production"),
    "2.B": ("化学工业", "Chemical industry"),
    "2.C": ("金属工业", "Metal industry"),
    "2.C.1": ("钢铁生产", "Iron and steel production"),
    "3": ("农业、林业和其他土地利用", "Agriculture, forestry and other land use"),
    "3.B": ("土地", "Land"),
    "4": ("废弃物", "Waste"),
    "5": ("其他", "Other"),
}


def name(code: str) -> tuple[str, str] | None:
    """(Chinese, English) name of ``code`` or of its nearest named parent; ``None`` if none."""
    parts = code.split(".")
    for n in range(len(parts), 0, -1):
        found = NAMES.get(".".join(parts[:n]))
        if found is not None:
            return found
    return None


def label(code: str) -> str:
    """``中文 English (code)``, or the code alone when it has no name."""
    found = name(code)
    return code if found is None else f"{found[0]} {found[1]} ({code})"
