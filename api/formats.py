"""The open-data download formats (issue 16, item 2), from one source: a dataset's rows as CSV
chunks (:func:`store.export.copy_csv`, one header row), so every format of one query holds the
same rows in the same order.

- ``csv``: the chunks after a UTF-8 byte-order mark (Excel in a Chinese locale then reads
  UTF-8) and a header row naming each column with its unit, as the xlsx sheet does
  (``lon (degrees_east)``); times ISO 8601 with the bureau's offset;
- ``parquet``: typed columns (times ``timestamp[us, tz=<bureau zone>]``), each column's unit
  and description in its field metadata, the dataset's in the file's;
- ``xlsx``: one sheet, one header row, at most :data:`XLSX_ROWS` rows (a sheet's limit,
  1,048,576, less the header), times as ISO 8601 text with offset (Excel has no time zones);
- ``netcdf``: NetCDF-4 following CF 1.11, station series as a Discrete Sampling Geometry
  (``featureType = timeSeries``, an indexed ragged array: ``station_index`` per observation),
  one variable per parameter (and unit) with its ``units``, missing where a row holds another;
- ``geojson``: RFC 7946 (WGS 84 longitude/latitude), for stations.

All of them run in constant memory: CSV chunks are parsed by pyarrow's streaming reader into
record batches of about a megabyte; Parquet row groups are flushed every
:data:`PARQUET_ROWS` rows; xlsx (openpyxl's write-only mode) and NetCDF are written to a
temporary file that is then streamed and deleted. Pure code: nothing here reads the store.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from store.export import Column

BOM: Final = "\ufeff".encode()
#: rows a sheet holds below its header row (Excel: 1,048,576 rows a sheet)
XLSX_ROWS: Final = 1_048_576 - 1
#: rows of one Parquet row group
PARQUET_ROWS: Final = 64 * 1024
#: bytes handed to the client at a time from a temporary file
FILE_CHUNK: Final = 1 << 20

#: format → (media type, file extension)
MEDIA: Final[Mapping[str, tuple[str, str]]] = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "netcdf": ("application/x-netcdf", "nc"),
    "geojson": ("application/geo+json", "geojson"),
}


#: glibc's ``M_MMAP_THRESHOLD`` (``mallopt``): allocations from this size up are mapped
#: and returned to the system when freed
MMAP_THRESHOLD: Final = 128 * 1024


def steady_memory() -> bool:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD` for this process (a gateway):
    otherwise glibc raises it after each large buffer is freed, so that the next ones (the
    batch-sized arrays of a download) come from the heap and fragment it, and the server's
    peak memory creeps up with every long download. Arrow allocates through it too (its
    default, mimalloc, keeps freed pages per thread). ``False`` where there is no glibc."""
    import ctypes
    import ctypes.util

    pa.set_memory_pool(pa.system_memory_pool())  # mimalloc keeps freed pages per thread
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(-3, MMAP_THRESHOLD))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


class _Chunks(io.RawIOBase):
    """A readable file over an iterator of byte chunks (for pyarrow's CSV reader)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = memoryview(next(self._it))
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def csv_body(chunks: Iterable[bytes], columns: Sequence[Column] | None = None) -> Iterator[bytes]:
    """The CSV file: a UTF-8 byte-order mark, then the chunks; with ``columns``, the chunks'
    header row is replaced by the columns' headings with their units (``lon (degrees_east)``,
    as the xlsx sheet's: a CSV has no other place for them)."""
    yield BOM
    if columns is None:
        yield from chunks
        return
    rest = iter(chunks)
    head = b""
    for chunk in rest:
        head += chunk
        end = head.find(b"\n")
        if end >= 0:
            given = next(csv.reader([head[:end].decode("utf-8").rstrip("\r")]), [])
            if given != [c.name for c in columns]:  # not the columns described: as it came
                yield head
                break
            names = [header(pa.field(c.name, pa.null(), metadata=_unit_of(c))) for c in columns]
            line = io.StringIO()
            csv.writer(line, lineterminator="\n").writerow(names)
            yield line.getvalue().encode("utf-8")
            yield head[end + 1 :]
            break
    else:
        yield head  # no complete header row: as it came
    yield from rest


def _unit_of(column: Column) -> dict[str, str] | None:
    return {"unit": column.unit} if column.unit else None


def batches(
    chunks: Iterable[bytes], columns: Sequence[Column], tz: str
) -> Iterator[pa.RecordBatch]:
    """The CSV chunks as typed record batches: each column as its :class:`Column` says, times
    as instants in the bureau's zone ``tz``; an empty cell is null, ``""`` an empty text."""
    types = {c.name: pa.timestamp("us", tz="UTC") if pa.types.is_timestamp(c.type) else c.type
             for c in columns}  # fmt: skip
    reader = pacsv.open_csv(
        io.BufferedReader(_Chunks(chunks), buffer_size=1 << 20),
        read_options=pacsv.ReadOptions(block_size=1 << 20, use_threads=False),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t", "true"],
            false_values=["f", "false"],
        ),
    )
    schema = arrow_schema(columns, tz)
    for batch in reader:
        arrays = [batch.column(i).cast(schema.field(i).type) for i in range(batch.num_columns)]
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def arrow_schema(
    columns: Sequence[Column], tz: str, metadata: Mapping[str, str] | None = None
) -> pa.Schema:
    """The Arrow schema of ``columns`` (times in ``tz``), units and descriptions as field
    metadata, ``metadata`` as the schema's."""
    fields = []
    for c in columns:
        kind = pa.timestamp("us", tz=tz) if pa.types.is_timestamp(c.type) else c.type
        meta = {k: v for k, v in (("unit", c.unit), ("description", c.description)) if v}
        fields.append(pa.field(c.name, kind, metadata=meta or None))
    return pa.schema(fields, metadata=dict(metadata or {}) or None)


class _Sink(io.RawIOBase):
    """A writable file whose written bytes are taken out with :meth:`drain`."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._parts.append(data)
        return len(data)

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts = []
        return out


def parquet_body(rows: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[bytes]:
    """The Parquet file (zstd), a row group every :data:`PARQUET_ROWS` rows."""
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    pending: list[pa.RecordBatch] = []
    held = 0
    try:
        for batch in rows:
            pending.append(batch)
            held += batch.num_rows
            if held >= PARQUET_ROWS:
                writer.write_table(pa.Table.from_batches(pending, schema=schema))
                pending, held = [], 0
                yield sink.drain()
        if pending or held == 0:
            writer.write_table(pa.Table.from_batches(pending, schema=schema))
    finally:
        writer.close()
    yield sink.drain()


def _python(batch: pa.RecordBatch) -> list[list[Any]]:
    """A batch's columns as Python lists, times as ISO 8601 text with offset."""
    out: list[list[Any]] = []
    for array in batch.columns:
        values = array.to_pylist()
        if pa.types.is_timestamp(array.type):
            values = [None if v is None else v.isoformat() for v in values]
        out.append(values)
    return out


def _stream_file(handle: IO[bytes]) -> Iterator[bytes]:
    handle.seek(0)
    while chunk := handle.read(FILE_CHUNK):
        yield chunk


def xlsx_body(rows: Iterable[pa.RecordBatch], schema: pa.Schema, title: str) -> Iterator[bytes]:
    """The xlsx file: one sheet named ``title`` (31 characters at most), a header row with
    units, then the rows (at most :data:`XLSX_ROWS`: the caller checks first)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.append([header(f) for f in schema])
    for batch in rows:
        for row in zip(*_python(batch), strict=True):
            sheet.append(list(row))
    with tempfile.TemporaryFile() as handle:
        book.save(handle)
        yield from _stream_file(handle)


def header(f: pa.Field) -> str:
    """A column's heading with its unit: ``lon (degrees_east)``; ``value`` as it is."""
    unit = (f.metadata or {}).get(b"unit")
    return f"{f.name} ({unit.decode()})" if unit else f.name


def geojson_body(
    rows: Iterable[pa.RecordBatch], lon: str = "lon", lat: str = "lat", key: str = "id"
) -> Iterator[bytes]:
    """A GeoJSON FeatureCollection of points (``lon``/``lat`` columns, WGS 84), each feature's
    ``id`` its ``key`` column, the other columns its properties."""
    yield b'{"type": "FeatureCollection", "features": ['
    first = True
    for batch in rows:
        names = batch.schema.names
        for values in zip(*_python(batch), strict=True):
            row = dict(zip(names, values, strict=True))
            x, y = row.pop(lon), row.pop(lat)
            feature = {
                "type": "Feature",
                "id": row[key],
                "geometry": {"type": "Point", "coordinates": [x, y]},
                "properties": row,
            }
            yield (b"" if first else b", ") + json.dumps(feature, ensure_ascii=False).encode()
            first = False
    yield b"]}"


# ------------------------------------------------------------------------------- NetCDF
#: parameter code → CF standard name, where one exists (CF standard name table)
CF_STANDARD_NAMES: Final[Mapping[str, str]] = {
    "pm25": "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air",
    "pm10": "mass_concentration_of_pm10_ambient_aerosol_particles_in_air",
    "so2": "mass_concentration_of_sulfur_dioxide_in_air",
    "no2": "mass_concentration_of_nitrogen_dioxide_in_air",
    "o3": "mass_concentration_of_ozone_in_air",
    "co": "mass_concentration_of_carbon_monoxide_in_air",
    "air_temp": "air_temperature",
    "rh": "relative_humidity",
    "air_pressure": "air_pressure",
    "wind_speed": "wind_speed",
    "wind_dir": "wind_from_direction",
    "water_temp": "sea_water_temperature",
}
#: units as the store writes them (sensors.parameters) → UDUNITS
UDUNITS: Final[Mapping[str, str]] = {
    "ug/m3": "ug m-3",
    "mg/m3": "mg m-3",
    "mg/L": "mg L-1",
    "mg/kg": "mg kg-1",
    "deg": "degree",
    "m3/s": "m3 s-1",
    "Nm3/h": "m3 h-1",
    "t/h": "t h-1",
    "L/s": "L s-1",
    "uS/cm": "uS cm-1",
    "nGy/h": "nGy h-1",
    "pH": "1",
}


#: storage of every variable along ``obs``: chunks of 16,384 values (a small chunk index
#: whatever the length) and a chunk cache of 256 KiB per variable (HDF5's default, 1 MiB for
#: each of some twenty variables, would hold about 20 MB for the length of a download)
OBS: Final[Mapping[str, Any]] = {"chunks": (1 << 14,)}
CHUNK_CACHE: Final = 1 << 18


def _udunits(unit: str) -> str:
    return UDUNITS.get(unit, unit)


def netcdf_body(
    rows: Iterable[pa.RecordBatch],
    *,
    stations: Sequence[tuple[str, str, float, float]],
    time: str,
    attributes: Mapping[str, str],
    names: Callable[[str], str] = str,
) -> Iterator[bytes]:
    """The NetCDF-4 file of station series (see the module): ``stations`` (id, name, lon,
    lat) the instance dimension; ``time`` the rows' time column; each row's ``value`` goes to
    the variable of its ``parameter`` and ``unit`` (its long name ``names(parameter)``), every
    other column to a variable of its own along ``obs``; ``attributes`` the global ones."""
    import h5netcdf
    import h5py

    text = h5py.string_dtype()
    index = {s[0]: i for i, s in enumerate(stations)}
    with tempfile.NamedTemporaryFile(suffix=".nc") as handle:
        with h5netcdf.File(handle.name, "w", rdcc_nbytes=CHUNK_CACHE) as nc:
            nc.attrs.update({"Conventions": "CF-1.11", "featureType": "timeSeries", **attributes})
            nc.dimensions = {"station": len(stations), "obs": None}
            sid = nc.create_variable("station_id", ("station",), dtype=text)
            sid[:] = np.array([s[0] for s in stations], dtype=object)
            sid.attrs.update({"cf_role": "timeseries_id", "long_name": "station id"})
            sname = nc.create_variable("station_name", ("station",), dtype=text)
            sname[:] = np.array([s[1] for s in stations], dtype=object)
            sname.attrs["long_name"] = "station name"
            for name, pos, std, unit, axis in (
                ("lon", 2, "longitude", "degrees_east", "X"),
                ("lat", 3, "latitude", "degrees_north", "Y"),
            ):
                v = nc.create_variable(name, ("station",), dtype="f8")
                v[:] = np.array([s[pos] for s in stations], dtype="f8")
                v.attrs.update({"standard_name": std, "units": unit, "axis": axis})
            si = nc.create_variable("station_index", ("obs",), dtype="i4", **OBS)
            si.attrs.update(
                {"instance_dimension": "station", "long_name": "which station the row is of"}
            )
            tv = nc.create_variable("time", ("obs",), dtype="f8", **OBS)
            tv.attrs.update(
                {
                    "standard_name": "time",
                    "units": "seconds since 1970-01-01 00:00:00",
                    "calendar": "standard",
                    "axis": "T",
                    "long_name": "time (UTC)",
                }
            )
            data: dict[tuple[str, str], Any] = {}
            others: dict[str, Any] = {}
            categories: dict[str, dict[str, int]] = {}
            n = 0
            for batch in rows:
                m = batch.num_rows
                if m == 0:
                    continue
                columns = dict(zip(batch.schema.names, batch.columns, strict=True))
                nc.resize_dimension("obs", n + m)
                station_col = "station" if "station" in columns else batch.schema.names[0]
                si[n : n + m] = np.array(
                    [index[s] for s in columns[station_col].to_pylist()], dtype="i4"
                )
                seconds = columns[time].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
                tv[n : n + m] = seconds.to_numpy(zero_copy_only=False) / 1e6
                params = columns["parameter"].to_numpy(zero_copy_only=False).astype(str)
                units = columns["unit"].to_numpy(zero_copy_only=False).astype(str)
                values = columns["value"].to_numpy(zero_copy_only=False).astype("f8")
                for key in sorted(set(zip(params.tolist(), units.tolist(), strict=True))):
                    var = data.get(key)
                    if var is None:
                        var = _parameter_variable(nc, key, data, names)
                    mask = (params == key[0]) & (units == key[1])
                    var[n : n + m] = np.where(mask, values, np.nan)
                for name, array in columns.items():
                    if name in (station_col, time, "value", "unit"):
                        continue
                    var = others.get(name)
                    if var is None:
                        var = _other_variable(nc, name, array.type, text)
                        others[name] = var
                    if pa.types.is_string(array.type):
                        var[n : n + m] = _codes(array, categories.setdefault(name, {}))
                    elif pa.types.is_boolean(array.type):
                        var[n : n + m] = np.array(
                            [-1 if v is None else int(v) for v in array.to_pylist()], dtype="i1"
                        )
                    else:
                        var[n : n + m] = array.to_numpy(zero_copy_only=False).astype("f8")
                n += m
            for name, codes in categories.items():
                others[name].attrs.update(_meanings(codes))
            coordinates = "time lat lon station_id"
            for var in data.values():
                var.attrs["coordinates"] = coordinates
        with open(handle.name, "rb") as written:
            yield from _stream_file(written)


def _parameter_variable(
    nc: Any, key: tuple[str, str], data: dict[tuple[str, str], Any], names: Callable[[str], str]
) -> Any:
    parameter, unit = key
    name = parameter if all(k[0] != parameter for k in data) else f"{parameter}_{len(data)}"
    var = nc.create_variable(name, ("obs",), dtype="f8", fillvalue=np.nan, **OBS)
    var.attrs.update(
        {"units": _udunits(unit), "long_name": names(parameter), "parameter": parameter}
    )
    if parameter in CF_STANDARD_NAMES and unit not in ("", "1"):
        var.attrs["standard_name"] = CF_STANDARD_NAMES[parameter]
    data[key] = var
    return var


def _codes(array: pa.Array, codes: dict[str, int]) -> Any:
    """A text column as the codes of its values (new values get the next code; null: -1)."""
    out = np.full(len(array), -1, dtype="i2")
    values = array.to_pylist()
    for value in set(values):
        if value is None:
            continue
        code = codes.setdefault(value, len(codes))
        out[[i for i, v in enumerate(values) if v == value]] = code
    return out


def _meanings(codes: Mapping[str, int]) -> dict[str, Any]:
    """CF ``flag_values`` and ``flag_meanings`` of a coded text variable (an empty text is
    ``empty``; spaces become underscores, as the blank-separated list requires)."""
    ordered = sorted(codes.items(), key=lambda kv: kv[1])
    return {
        "flag_values": np.array([c for _, c in ordered], dtype="i2"),
        "flag_meanings": " ".join((v.replace(" ", "_") or "empty") for v, _ in ordered),
    }


def _other_variable(nc: Any, name: str, kind: pa.DataType, text: Any) -> Any:
    if pa.types.is_string(kind):  # few distinct values: coded (CF flags), not per-row text
        var = nc.create_variable(name, ("obs",), dtype="i2", fillvalue=np.int16(-1), **OBS)
    elif pa.types.is_boolean(kind):
        var = nc.create_variable(name, ("obs",), dtype="i1", fillvalue=np.int8(-1), **OBS)
        var.attrs.update({"flag_values": np.array([0, 1], dtype="i1"), "flag_meanings": "no yes"})
    else:
        var = nc.create_variable(name, ("obs",), dtype="f8", fillvalue=np.nan, **OBS)
    var.attrs["long_name"] = name
    return var
