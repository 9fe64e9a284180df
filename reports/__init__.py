"""Reports to hand to the director: the daily air-quality report (HJ 633-2026) and the monthly
surface-water quality report (GB 3838-2002), as xlsx, PDF or CSV.

:mod:`reports.tables` builds them from frames (no I/O), :mod:`reports.data` reads the frames
through :mod:`store`, :mod:`reports.render` writes the files.
"""
