"""Carbon accounting: the emission-factor library (:mod:`carbon.factors`, data in
``carbon/data``), the methods (:mod:`carbon.accounting`, :mod:`carbon.cems`), activity data
(:mod:`carbon.activity`), inventories (:mod:`carbon.inventory`), sinks, targets and regions,
and planners' job files (:mod:`carbon.jobfile`).

No network or database I/O: besides the shipped factor files, only the files a caller names
are read (activity tables, job files) or written (a job's outputs). Sources and tables:
``docs/standards/carbon.md``.
"""
