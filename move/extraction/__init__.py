"""Stages 1-2, decoding and extraction: videos -> uniformly sampled frames -> backbone features.

Modules: ``video`` (decode with decord, locate videos), ``weights`` (named backbone weights,
download cache), ``backbones`` (frame feature extractors by name), ``extract`` (the extraction
run, shards, merge). The HDF5 feature file it writes, which every later stage reads, is
``move.features`` (on the ground floor).
"""
