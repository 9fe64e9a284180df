"""The JSON reading batch ``{"observations": [{station, parameter, time, value, unit?, flag?}]}``
decoded (pure).

The usual body — every item a plain reading — is decoded by msgspec straight into typed
records and held as columns (:class:`ingest.batch.RawColumns`), with no dict per item. Any
other body (an item with another shape, a value that is not a finite number, a text msgspec
refuses, a body that is not UTF-8 JSON) is decoded by the standard library's ``json`` as
before, so that each item gets the reason it always got and a malformed body the same 400.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from typing import Any

import msgspec

from ingest.batch import RawColumns


class _Reading(msgspec.Struct, forbid_unknown_fields=True):
    station: str
    parameter: str
    time: str
    value: float
    unit: str | None = None
    flag: str | None = None


class _Body(msgspec.Struct):
    observations: list[_Reading]


_TYPED = msgspec.json.Decoder(_Body)


class BodyError(ValueError):
    """A body that is not a reading batch; the message is the answer's detail."""


def decode_batch(body: bytes) -> Sequence[Any]:
    """The items of a batch body: columns when every item is a plain reading, else the
    decoded JSON items (each validated, and rejected with its reason, later).

    Raises
    ------
    BodyError
        when the body is not JSON, or not an object ``{"observations": [...]}``.
    """
    try:
        readings = _TYPED.decode(body).observations
    except (msgspec.DecodeError, RecursionError):
        pass
    else:  # msgspec refuses NaN, Infinity and numbers beyond a double: every value finite
        return RawColumns(
            list(map(operator.attrgetter("station"), readings)),
            list(map(operator.attrgetter("parameter"), readings)),
            list(map(operator.attrgetter("time"), readings)),
            list(map(operator.attrgetter("value"), readings)),
            list(map(operator.attrgetter("unit"), readings)),
            list(map(operator.attrgetter("flag"), readings)),
        )
    try:
        doc: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BodyError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BodyError("body is nested too deeply") from None
    items = doc.get("observations") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise BodyError('body must be an object {"observations": [...]}')
    return items
