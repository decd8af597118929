"""move: a reproducible pipeline for video long-tailed recognition around MOVE (AAAI 2023).

Stages, one module each: ``video`` (decode), ``backbones`` and ``extract`` (features to HDF5),
``splits`` (long-tailed benchmark splits), ``data`` (feature datasets), ``model`` and
``vicinity`` (MOVE), ``train`` and ``metrics`` (training and evaluation), ``cli`` (``move``).
"""

__version__ = "0.1.0"
