"""Zonal statistics: the pipeline against ``exactextract`` alone, Dask scaling from 1 to 2
workers, and a raster larger than the memory each worker is given.

Inputs, made here (no download): a tiled, compressed float32 GeoTIFF in UTM 50N (``--size``²
cells of 30 m; 16,000² = 1.0 GB of cells, a smooth field plus noise) and ``--polygons``
polygons in WGS 84 over it.

- **Overhead**: ``exactextract`` alone (the polygons already in the raster's CRS, the file path
  given to it) against the pipeline's task (``pipelines.zonal.zonal_rows``: the WGS 84 layer
  checked and reprojected, the bounds tested, the same call, the result reshaped to the rows
  the store takes), each in a fresh process for its own peak memory. The pipeline limits GDAL's
  block cache to ``ECOSENSE_GDAL_CACHE_MB`` (64); it is also run with GDAL's default cache, as
  exactextract alone is, to separate that choice from the pipeline's own cost. Results are
  asserted equal.
- **Scaling**: the same job on the Dask runner (local cluster, one worker process per core),
  the polygons in ``--chunks`` tasks, with 1 and then 2 workers.
- **Memory**: each worker gets ``--memory-limit``; its peak resident memory is read at the end
  (``ru_maxrss``) and set against the raster's size.

Run: ``python -m benchmarks.bench_zonal [--size 16000 --polygons 400 --chunks 8]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from affine import Affine
from exactextract import exact_extract
from rasterio.windows import Window

from benchmarks.harness import in_fresh_process, peak_rss
from pipelines.zonal import GDAL_CACHE_MB, zonal_rows

CRS = "EPSG:32650"
STATS = ("mean", "sum", "count", "min", "max")
ORIGIN = (400_000.0, 4_500_000.0)  # west, north (m)
CELL = 30.0


def make_raster(path: Path, size: int) -> int:
    """Write the ``size`` × ``size`` test raster; return its bytes of cells."""
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "float32",
        "crs": CRS, "transform": Affine(CELL, 0.0, ORIGIN[0], 0.0, -CELL, ORIGIN[1]), "tiled": True,
        "blockxsize": 512, "blockysize": 512, "compress": "deflate", "nodata": -9999.0,
    }  # fmt: skip
    rng = np.random.default_rng(42)
    cols = np.arange(size, dtype="float32")
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, 1024):
            rows = np.arange(row, min(row + 1024, size), dtype="float32")[:, None]
            field = 50 + 20 * np.sin(rows / 700) * np.cos(cols / 900)
            noise = rng.normal(0, 2, (len(rows), size)).astype("float32")
            dst.write((field + noise).astype("float32"), 1, window=Window(0, row, size, len(rows)))
    return size * size * 4


def make_polygons(size: int, n: int) -> gpd.GeoDataFrame:
    """``n`` polygons (hulls of 5-9 points, 1-6 % of the extent across) over the raster, in
    WGS 84, indexed ``Z0000`` …"""
    rng = np.random.default_rng(7)
    extent = size * CELL
    shapes = []
    for _ in range(n):
        cx = ORIGIN[0] + rng.uniform(0.05, 0.95) * extent
        cy = ORIGIN[1] - rng.uniform(0.05, 0.95) * extent
        k = int(rng.integers(5, 10))
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
        radius = rng.uniform(0.01, 0.06) * extent / 2 * rng.uniform(0.6, 1.0, k)
        ring = zip(cx + radius * np.cos(angles), cy + radius * np.sin(angles), strict=True)
        # valid by construction: exactextract alone takes an invalid polygon as it is, where
        # the pipeline repairs it first (and the results would rightly differ)
        shapes.append(shapely.Polygon(ring).convex_hull)
    layer = gpd.GeoDataFrame(geometry=shapes, crs=CRS, index=[f"Z{i:04d}" for i in range(n)])
    return layer.to_crs("EPSG:4326")


def pipeline_task(path: str, layer: gpd.GeoDataFrame) -> pd.DataFrame:
    """What a zonal task computes (``pipelines.zonal.zonal_rows``): the rows stored."""
    return zonal_rows(path, layer, STATS)


def _child(kind: str, path: str, layer: gpd.GeoDataFrame, cache_mb: int | None) -> pd.DataFrame:
    """``direct`` exactextract or the ``pipeline`` task, with GDAL's block cache at
    ``cache_mb`` (0 or None: GDAL's default, 5 % of the machine's memory); set before GDAL's
    first read in this fresh process."""
    if cache_mb:
        os.environ["GDAL_CACHEMAX"] = str(cache_mb)
        os.environ["ECOSENSE_GDAL_CACHE_MB"] = str(cache_mb)
    else:
        os.environ.pop("GDAL_CACHEMAX", None)
        os.environ["ECOSENSE_GDAL_CACHE_MB"] = "0"
    if kind == "direct":
        result: pd.DataFrame = exact_extract(
            path, layer.to_crs(CRS).reset_index(drop=True), list(STATS), output="pandas"
        )
        return result
    return zonal_rows(path, layer, STATS)


def run_dask(
    path: str, layer: gpd.GeoDataFrame, workers: int, chunks: int, memory_limit: str
) -> tuple[float, list[int], pd.DataFrame]:
    from pipelines.runner import Runner

    parts = np.array_split(np.arange(len(layer)), chunks)
    plans = [layer.iloc[p] for p in parts if len(p)]
    with Runner(None, local="processes", workers=workers, memory_limit=memory_limit) as runner:
        runner.client.run(lambda: None)
        start = time.perf_counter()
        out = runner.map(pipeline_task, plans, path)
        seconds = time.perf_counter() - start
        failed = [r for r in out if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        peaks = runner.client.run(peak_rss)
    rows = pd.concat([r for r in out if isinstance(r, pd.DataFrame)], ignore_index=True)
    return seconds, sorted(peaks.values()), rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16_000, help="raster cells per side")
    parser.add_argument("--polygons", type=int, default=400)
    parser.add_argument("--chunks", type=int, default=8, help="polygon chunks (Dask tasks)")
    parser.add_argument("--memory-limit", default="768MiB", help="per Dask worker")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "field.tif")
        t0 = time.perf_counter()
        raster_bytes = make_raster(Path(path), args.size)
        make_s = time.perf_counter() - t0
        layer = make_polygons(args.size, args.polygons)

        direct_s, direct_peak, direct = in_fresh_process(_child, "direct", path, layer, None)
        ours_s, ours_peak, ours = in_fresh_process(_child, "pipeline", path, layer, GDAL_CACHE_MB)
        full_s, full_peak, _ = in_fresh_process(
            _child, "pipeline", path, layer, 0
        )  # GDAL's default cache
        wide = ours.pivot(index="feature", columns="stat", values="value")[list(STATS)]
        np.testing.assert_allclose(wide.to_numpy(), direct[list(STATS)].to_numpy(), rtol=1e-9)

        one_s, one_peaks, one_rows = run_dask(path, layer, 1, args.chunks, args.memory_limit)
        two_s, two_peaks, two_rows = run_dask(path, layer, 2, args.chunks, args.memory_limit)
        key = ["feature", "stat"]
        for rows in (one_rows, two_rows):
            pd.testing.assert_frame_equal(
                rows.sort_values(key).reset_index(drop=True),
                ours.sort_values(key).reset_index(drop=True),
            )
    limit = int(pd.Series([args.memory_limit]).str.extract(r"(\d+)")[0].iloc[0]) * 2**20
    result = {
        "raster_cells": args.size * args.size,
        "raster_mb": round(raster_bytes / 2**20),
        "polygons": args.polygons,
        "make_raster_s": round(make_s, 1),
        "exactextract_s": round(direct_s, 2),
        "exactextract_peak_mb": round(direct_peak / 2**20),
        "pipeline_s": round(ours_s, 2),
        "pipeline_peak_mb": round(ours_peak / 2**20),
        "pipeline_overhead_ratio": round(ours_s / direct_s, 3),
        "pipeline_gdal_default_cache_s": round(full_s, 2),
        "pipeline_gdal_default_cache_peak_mb": round(full_peak / 2**20),
        "pipeline_overhead_ratio_same_cache": round(full_s / direct_s, 3),
        "dask_1_worker_s": round(one_s, 2),
        "dask_2_workers_s": round(two_s, 2),
        "dask_scaling_1_to_2": round(one_s / two_s, 2),
        "worker_memory_limit_mb": round(limit / 2**20),
        "worker_peak_mb_1_worker": [round(p / 2**20) for p in one_peaks],
        "worker_peak_mb_2_workers": [round(p / 2**20) for p in two_peaks],
        "raster_vs_worker_limit": round(raster_bytes / limit, 2),
        "results_equal": True,
    }
    print(result)
    return result


if __name__ == "__main__":
    main()
