"""VideoLT's release as a data source: what a dataset of source ``videolt_release`` is
(``move.datasets.sources`` registers it), its defaults, and the top-level key it once had.

VideoLT's own module: no other module names VideoLT's dataset (tests/test_sources.py checks it).
The conversion of its features and lists (numpy, pandas, h5py) is ``conversion``, imported by
the command only, so planning reads these declarations without it.
"""

SOURCE = "videolt_release"  # datasets.<name>.source of VideoLT's release
# What a videolt_release dataset leaves out: the test list, the stored dtype, the backbones of its
# paper table (Tables 1-2) and of its ablation (Table 4: ResNet-101), and the authors' groups
# (head > 500 train videos, tail <= 100).
DEFAULTS = {
    "test_list": "test",
    "dtype": "float16",
    "backbones": ["resnet50", "resnet101", "tsm_resnet50"],
    "ablation_backbone": "resnet101",
    "groups": {"head_min": 501, "tail_max": 100},
}
# The top-level key VideoLT once had, and how to move it (the config's validation refuses it).
MOVED_KEYS = {
    "videolt": "VideoLT is a dataset now: move the section under 'datasets' and add "
    f"'source: {SOURCE}' (datasets: {{videolt: {{source: {SOURCE}, features: {{...}}, "
    "labels: ...}})",
}
