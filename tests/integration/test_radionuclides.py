"""Radionuclides from laboratory files (issue 18, item 4): air aerosol, water and soil results
imported with ``ecosense import``, each into its medium's parameter and canonical unit by the
station's kind (a shared name such as ``cs137`` or ``gross_beta``), and a unit of the wrong
medium refused alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecosense import cli
from store.postgres import PostgresStore

pytestmark = pytest.mark.integration


def test_lab_results_land_in_their_medium_and_unit(store: PostgresStore, cli_env: Path) -> None:
    stations = cli_env / "stations.csv"
    stations.write_text(
        "id,name,kind,lon,lat\n"
        "R1,Aerosol sampler,radiation,116.4,39.9\n"
        "W1,River,water,116.5,39.9\n"
        "S1,Field,soil,116.6,39.9\n",
        "utf-8",
    )
    assert cli.main(["stations", "import", str(stations)]) == 0
    lab = cli_env / "lab.csv"
    t = "2026-11-20T10:00:00+08:00"
    lab.write_text(
        "station,parameter,time,value,unit\n"
        f"R1,cs137,{t},12,uBq/m3\n"
        f"R1,gross_beta,{t},0.8,mBq/m3\n"
        f"R1,be7,{t},0.0035,Bq/m3\n"
        f"W1,gross_beta,{t},0.12,Bq/L\n"
        f"W1,w03001,{t},0.05,Bq/L\n"
        f"W1,h3,{t},5000,mBq/L\n"
        f"S1,cs137,{t},3.2,Bq/kg\n"
        f"S1,k40,{t},0.6,Bq/g\n"
        f"S1,ra226,{t},1,Bq/L\n",  # a soil content is per kg: refused, the rest stored
        "utf-8",
    )
    assert cli.main(["import", str(lab)]) == 1  # one row refused
    found = {
        (str(r.station), str(r.parameter)): (float(r.value), str(r.unit))
        for r in store.latest().itertuples()
    }
    assert found[("R1", "aerosol_cs137")] == pytest.approx((0.012, "mBq/m3"))
    assert found[("R1", "aerosol_gross_beta")] == pytest.approx((0.8, "mBq/m3"))
    assert found[("R1", "aerosol_be7")] == pytest.approx((3.5, "mBq/m3"))
    assert found[("W1", "water_gross_beta")] == pytest.approx((0.12, "Bq/L"))
    assert found[("W1", "water_gross_alpha")] == pytest.approx((0.05, "Bq/L"))
    assert found[("W1", "water_h3")] == pytest.approx((5.0, "Bq/L"))
    assert found[("S1", "soil_cs137")] == pytest.approx((3.2, "Bq/kg"))
    assert found[("S1", "soil_k40")] == pytest.approx((600.0, "Bq/kg"))
    assert ("S1", "soil_ra226") not in found
