"""Stages 0 and 3, datasets and splits: where the videos and labels come from, and the
long-tailed benchmark splits built from them.

Modules: ``demo`` (the embedded synthetic videos), ``kinetics`` (the authors' MiniKinetics200
lists joined with Kinetics-400 annotations), ``sources`` (the data-source registry: how a
dataset's data come in), ``videolt`` (VideoLT's release: its defaults, and its conversion),
``splits`` (long-tailed train / balanced test splits), ``synthetic`` (synthetic features for
tests and benchmarks).
"""
