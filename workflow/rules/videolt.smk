# A dataset of source videolt_release (VideoLT's release: move.datasets.sources): its released
# per-video features converted once to HDF5 with its own split (rule train then trains on them:
# results/<dataset>/<backbone>/<variant>/seed<k>.json, and results/<dataset>_<backbone>.json the
# main result). Its log is logs/<dataset>_features/<backbone>.log (VideoLT: logs/videolt_features/).


rule videolt_features:
    wildcard_constraints:
        own_split_dataset=datasets_made_by("videolt_features"),
    input:
        features=release_features_dir,
        labels=release_labels_dir,
    output:
        features="features/{own_split_dataset}/{backbone}.h5",
        failures="features/{own_split_dataset}/{backbone}.failures.csv",
        split="splits/{own_split_dataset}_{backbone}.csv",
    params:
        test_list=lambda wildcards: release_settings(wildcards)["test_list"],
        dtype=lambda wildcards: release_settings(wildcards)["dtype"],
        max_share=lambda wildcards: release_settings(wildcards)["max_missing_share"],
    log:
        "logs/{own_split_dataset}_features/{backbone}.log",
    resources:
        **job_resources(mem_mb=8000, runtime=12 * 60),
    benchmark:
        "logs/benchmarks/{own_split_dataset}_features/{backbone}.tsv"
    message:
        "Converting {wildcards.own_split_dataset}'s {wildcards.backbone} features to HDF5"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move videolt-convert --features-dir {input.features:q} --labels {input.labels:q}"
        " --backbone {wildcards.backbone} --out {output.features} --split-out {output.split}"
        " --test-list {params.test_list} --dtype {params.dtype}"
        " --max-missing-share {params.max_share} > {log} 2>&1"
