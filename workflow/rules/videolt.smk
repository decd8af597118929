# A dataset of source videolt_release (VideoLT's release: move.datasets.sources): its released
# per-video features converted once to HDF5 with its own split (rule train then trains on them:
# results/<dataset>/<backbone>/<variant>/seed<k>.json, and results/<dataset>_<backbone>.json the
# main result). Its log is logs/videolt_features/<dataset>_<backbone>.log (under the rule, as every
# rule's).


rule videolt_features:
    wildcard_constraints:
        own_split_dataset=datasets_made_by("videolt_features"),
    input:
        features=release_features_dir,
        labels=release_labels_dir,
    output:
        features=layout.fill(layout.FEATURES, dataset="{own_split_dataset}"),
        failures=layout.fill(layout.FEATURE_FAILURES, dataset="{own_split_dataset}"),
        split=layout.fill(layout.OWN_SPLIT, dataset="{own_split_dataset}"),
    params:
        test_list=lambda wildcards: release_settings(wildcards)["test_list"],
        dtype=lambda wildcards: release_settings(wildcards)["dtype"],
        max_share=lambda wildcards: release_settings(wildcards)["max_missing_share"],
    log:
        "logs/videolt_features/{own_split_dataset}_{backbone}.log",
    resources:
        **job_resources(mem_mb=8000, runtime=12 * 60),
    benchmark:
        "logs/benchmarks/videolt_features/{own_split_dataset}_{backbone}.tsv"
    message:
        "Converting {wildcards.own_split_dataset}'s {wildcards.backbone} features to HDF5"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move videolt-convert --features-dir {input.features:q} --labels {input.labels:q}"
        " --backbone {wildcards.backbone} --out {output.features} --split-out {output.split}"
        " --test-list {params.test_list} --dtype {params.dtype}"
        " --max-missing-share {params.max_share} > {log} 2>&1"
