"""Regions of the accounts: ``CN``; provinces by ISO 3166-2 (``CN-BJ``); cities and counties by
their 6-digit GB/T 2260 code, whose first two digits name the province and first four the city.
"""

from __future__ import annotations

import re
from typing import Final

from carbon.errors import CarbonError

#: GB/T 2260 province prefix → ISO 3166-2 code.
PROVINCES: Final = {
    "11": "CN-BJ", "12": "CN-TJ", "13": "CN-HE", "14": "CN-SX", "15": "CN-NM",
    "21": "CN-LN", "22": "CN-JL", "23": "CN-HL",
    "31": "CN-SH", "32": "CN-JS", "33": "CN-ZJ", "34": "CN-AH", "35": "CN-FJ", "36": "CN-JX",
    "37": "CN-SD",
    "41": "CN-HA", "42": "CN-HB", "43": "CN-HN", "44": "CN-GD", "45": "CN-GX", "46": "CN-HI",
    "50": "CN-CQ", "51": "CN-SC", "52": "CN-GZ", "53": "CN-YN", "54": "CN-XZ",
    "61": "CN-SN", "62": "CN-GS", "63": "CN-QH", "64": "CN-NX", "65": "CN-XJ",
    "71": "CN-TW", "81": "CN-HK", "82": "CN-MO",
}  # fmt: skip
ISO: Final = frozenset(PROVINCES.values())
_CODE = re.compile(r"^\d{6}$")


def chain(region: str) -> list[str]:
    """``region`` and the regions containing it, smallest first: ``110105`` → ``110105``,
    ``110100``, ``CN-BJ``, ``CN``; regional grids (``grid:north``) → themselves, ``CN``.

    Raises
    ------
    CarbonError
        for a region that is none of these.
    """
    if region == "CN":
        return ["CN"]
    if region in ISO:
        return [region, "CN"]
    if region.startswith("grid:") and len(region) > 5:
        return [region, "CN"]
    if _CODE.match(region) and region[:2] in PROVINCES and region[2:] != "0000":
        city = region[:4] + "00"
        out = [region] if region != city else []
        return [*out, city, PROVINCES[region[:2]], "CN"]
    raise CarbonError(
        f"unknown region {region!r}: use CN, a province as ISO 3166-2 (CN-BJ), or a 6-digit "
        "GB/T 2260 city or county code"
    )
