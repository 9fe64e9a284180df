"""The runtime dependencies are complete (issue 15, "What to build" 2): every third-party module
that the installed packages import comes from a dependency in ``[project] dependencies``, not
only from the ``test`` extra, so the image (which installs no extra) can import it.

Imports are found by parsing each module with :mod:`ast` (an import inside a function counts,
a mention in a comment does not), plus the packages read as data through
``importlib.resources.files("…")``; each is mapped to its distribution by
:func:`importlib.metadata.packages_distributions`.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Final

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT: Final = Path(__file__).resolve().parents[2]
#: Public testing helpers shipped in the packages, and the extra whose packages they may
#: import (xarray's ``testing.strategies`` pattern); no runtime module may import them.
TESTING_HELPERS: Final[Mapping[str, str]] = {"sensors/strategies.py": "test"}


def config() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def packages() -> list[str]:
    """The top-level packages ``pyproject.toml`` installs."""
    include = config()["tool"]["setuptools"]["packages"]["find"]["include"]  # type: ignore[index]
    return sorted({p.rstrip("*") for p in include})


def declared(extra: str | None = None) -> set[str]:
    """The canonical names of the runtime dependencies (or of ``extra``'s)."""
    project = config()["project"]
    assert isinstance(project, dict)
    reqs = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(r).name) for r in reqs}


def imported(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(dotted module, line) of each absolute import in ``tree``, and of each package read
    through ``files("package")`` (importlib.resources)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "files")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "files")
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value, node.lineno


def third_party(own: list[str]) -> Iterator[tuple[str, str, int]]:
    """(module path, top-level third-party module, line) over the installed packages."""
    for package in own:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text("utf-8"))
            for name, line in imported(tree):
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in own:
                    yield path.relative_to(ROOT).as_posix(), top, line


def missing(own: list[str]) -> list[str]:
    """``path:line: module (distributions)`` for each import whose distribution is not
    declared where that module may take it from."""
    dists = packages_distributions()
    runtime = declared()
    out = []
    for path, top, line in third_party(own):
        allowed = runtime | (declared(TESTING_HELPERS[path]) if path in TESTING_HELPERS else set())
        found = {canonicalize_name(d) for d in dists.get(top, [])}
        if not found & allowed:
            out.append(f"{path}:{line}: {top} ({', '.join(sorted(found)) or 'not installed'})")
    return out


def test_the_scan_sees_what_it_looks_for() -> None:
    sample = ast.parse(
        "import pykrige.ok\n"
        "from PIL import Image\n"
        "from . import sibling\n"
        "def f():\n"
        "    import altair as alt\n"
        "    return files('fastapi_offline'), resources.files('carbon')\n"
        "'''import hypothesis (a docstring is no import)'''\n"
    )
    assert list(imported(sample)) == [
        ("pykrige.ok", 1),
        ("PIL", 2),
        ("altair", 5),
        ("fastapi_offline", 6),
        ("carbon", 6),
    ]


def test_every_runtime_import_is_a_runtime_dependency() -> None:
    """A module imported by the installed packages (``pykrige`` in gis/interpolate.py was only
    in the test extra) must come from ``[project] dependencies``."""
    own = packages()
    assert {"gis", "dashboards", "api", "ecosense"} <= set(own)
    seen = {top for _, top, _ in third_party(own)}
    assert {"pykrige", "fastapi_offline", "distributed", "PIL"} <= seen
    assert missing(own) == [], "declare these in pyproject.toml [project] dependencies"


def test_a_test_only_import_would_fail() -> None:
    """The check is not vacuous: the test extra's packages are not runtime dependencies."""
    assert declared("test") - declared() >= {"hypothesis", "pytest", "playwright"}
    runtime = declared()
    dists = packages_distributions()
    assert not {canonicalize_name(d) for d in dists["hypothesis"]} & runtime


def test_testing_helpers_are_not_imported_at_run_time() -> None:
    """The public testing helpers may import the test extra only because nothing at run
    time imports them."""
    own = packages()
    helpers = {p.removesuffix(".py").replace("/", ".") for p in TESTING_HELPERS}
    assert all((ROOT / p).is_file() for p in TESTING_HELPERS)
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in own
        for path in sorted((ROOT / package).rglob("*.py"))
        for name, line in imported(ast.parse(path.read_text("utf-8")))
        if any(name == h or name.startswith(h + ".") for h in helpers)
    ]
    assert offenders == []


def test_each_dependency_is_imported_or_says_what_uses_it() -> None:
    """A runtime dependency that no installed package imports (an engine that is only the
    backend of another library, such as scipy for xarray's NetCDF 3 files) names in its
    comment what uses it; a stale dependency fails here."""
    own = packages()
    dists = packages_distributions()
    used = {canonicalize_name(d) for _, top, _ in third_party(own) for d in dists.get(top, [top])}
    text = (ROOT / "pyproject.toml").read_text("utf-8")
    block = text.split("\ndependencies = [\n", 1)[1].split("\n]\n", 1)[0]
    lines = re.findall(r'^\s*"([^"]+)",\s*(?:#\s*(.*))?$', block, re.MULTILINE)
    assert {canonicalize_name(Requirement(r).name) for r, _ in lines} == declared()
    silent = [
        r
        for r, comment in lines
        if canonicalize_name(Requirement(r).name) not in used and not comment
    ]
    assert silent == [], "imported by no package: say in a comment which library uses it"


@pytest.mark.parametrize(
    ("suffix", "engine"), [(".nc", "scipy"), (".nc", "h5netcdf"), (".zarr", None)]
)
def test_the_backend_engines_read_rasters(tmp_path: Path, suffix: str, engine: str | None) -> None:
    """The engines declared only as xarray's backends are the ones ``gis.rasters`` opens
    files with: NetCDF 3 (scipy), NetCDF 4 / HDF5 (h5netcdf) and Zarr."""
    import numpy as np
    import rioxarray  # noqa: F401  (the .rio accessor)
    import xarray as xr

    from gis.rasters import open_raster

    grid = xr.DataArray(
        np.arange(12, dtype="float64").reshape(3, 4),
        dims=("y", "x"),
        coords={"y": [4500.0, 4490.0, 4480.0], "x": [500.0, 510.0, 520.0, 530.0]},
        name="ndvi",
    ).rio.write_crs("EPSG:32650")
    path = tmp_path / f"grid-{engine or 'zarr'}{suffix}"
    if engine is None:
        grid.to_dataset().to_zarr(path, consolidated=False)
    else:
        grid.to_dataset().to_netcdf(path, engine=engine)
    opened = open_raster(path)
    assert opened.rio.crs.to_epsg() == 32650
    np.testing.assert_array_equal(opened.to_numpy(), grid.to_numpy())
