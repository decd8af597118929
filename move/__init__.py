"""move: a reproducible pipeline for video long-tailed recognition around MOVE (AAAI 2023).

One subpackage per stage of the workflow: ``datasets`` (demo videos, the authors' lists,
VideoLT, long-tailed splits), ``extraction`` (decode and backbone features to HDF5),
``training`` (MOVE and the baselines, evaluation), ``reporting`` (tables, figures). Beside
them: ``config`` (the workflow's one configuration), ``cli`` (the ``move`` command),
``downloads``, ``files``, ``errors``, ``device``.
"""

__version__ = "0.1.0"
