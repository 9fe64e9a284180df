"""Who may see and do what: roles, grades, principals and the one decision :func:`authorize`.

Pure: no I/O. store/ keeps users, sessions and per-station grades; api/ (and later the
dashboards and downloads) ask :func:`authorize`, never decide themselves.
"""

from access.grades import (
    DATASET_GRADES,
    STATION_KIND_GRADES,
    dataset,
    station_dataset,
    station_grade,
)
from access.policy import (
    ANONYMOUS,
    BREAK_GLASS,
    Action,
    Dataset,
    Decision,
    Grade,
    Principal,
    Role,
    authorize,
    ceiling,
    consumer,
    device,
    user,
)

__all__ = [
    "ANONYMOUS",
    "BREAK_GLASS",
    "DATASET_GRADES",
    "STATION_KIND_GRADES",
    "Action",
    "Dataset",
    "Decision",
    "Grade",
    "Principal",
    "Role",
    "authorize",
    "ceiling",
    "consumer",
    "dataset",
    "device",
    "station_dataset",
    "station_grade",
    "user",
]
