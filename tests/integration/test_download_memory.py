"""Issue 16, item 2: "streams the file in constant memory (a test downloads a few hundred
thousand readings and checks the server's memory stays flat)".

The gateway runs in a process of its own. After it has sent 450,000 readings in each format
(its allocators and caches warmed up: an HDF5 writer, pyarrow's pools), the store gets twice
as many and it sends them all again in each format: its peak resident memory must stay where
it was (within a bound far below a file's size), so it does not grow with a download's length."""

from __future__ import annotations

import pytest

from benchmarks.bench_download import Server, download, load

pytestmark = pytest.mark.integration
ROWS = 450_000
STATIONS = 15
FORMATS = ("csv", "parquet", "netcdf")
#: most the server's peak may grow when the downloads double (bytes); a server holding a
#: whole file would grow by at least its size (the larger CSV is about 65 MB)
GROWTH = 12 * 2**20


@pytest.fixture
def server_admin_url(embedded_admin_url: str) -> str:
    """The memory is the gateway's: one server is enough."""
    return embedded_admin_url


def test_downloads_stream_in_constant_memory(database_url: str) -> None:
    assert load(database_url, ROWS, STATIONS) == ROWS
    with Server(database_url) as server:
        for fmt in FORMATS:
            _, _, rows = download(server.base, fmt)
            assert rows in (ROWS, -1), fmt  # NetCDF rows: tests/integration/test_downloads.py
        warm = server.peak()
        assert load(database_url, 2 * ROWS, STATIONS) == 2 * ROWS
        sizes = {}
        for fmt in FORMATS:
            _, sizes[fmt], rows = download(server.base, fmt)
            assert rows in (2 * ROWS, -1), fmt
        grown = server.peak() - warm
    assert sizes["csv"] > 4 * GROWTH and sizes["netcdf"] > 4 * GROWTH  # the check can fail
    assert grown < GROWTH, f"the server's peak grew by {grown / 2**20:.1f} MB: {sizes}"
