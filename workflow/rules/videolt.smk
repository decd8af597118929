# VideoLT: the released per-video features converted once to HDF5 (rule train then trains on them:
# results/videolt_<backbone>/<variant>.json, and results/videolt_<backbone>.json the main result).


rule videolt_features:
    input:
        features=videolt_features_dir,
        labels=videolt_labels_dir,
    output:
        features="features/videolt/{backbone}.h5",
        failures="features/videolt/{backbone}.failures.csv",
        split="splits/videolt_{backbone}.csv",
    params:
        test_list=SETTINGS.videolt["test_list"],
        dtype=SETTINGS.videolt["dtype"],
        max_share=SETTINGS.videolt["max_missing_share"],
    log:
        "logs/videolt_features/{backbone}.log",
    resources:
        **job_resources(mem_mb=8000, runtime=12 * 60),
    benchmark:
        "logs/benchmarks/videolt_features/{backbone}.tsv"
    message:
        "Converting VideoLT's {wildcards.backbone} features to HDF5"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move videolt-convert --features-dir {input.features:q} --labels {input.labels:q}"
        " --backbone {wildcards.backbone} --out {output.features} --split-out {output.split}"
        " --test-list {params.test_list} --dtype {params.dtype}"
        " --max-missing-share {params.max_share} > {log} 2>&1"
