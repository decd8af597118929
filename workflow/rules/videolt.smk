# VideoLT: the released per-video features converted once to HDF5, then MOVE trained on them.


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


rule videolt_train:
    input:
        features="features/videolt/{backbone}.h5",
        split="splits/videolt_{backbone}.csv",
    output:
        results="results/videolt_{backbone}.json",
        per_class="results/videolt_{backbone}.per_class.csv",
        checkpoint="results/videolt_{backbone}.pt",
    params:
        settings=json.dumps(SETTINGS.videolt_train),
        groups=SETTINGS.videolt["groups"],
        seed=SETTINGS.seed,
    log:
        "logs/videolt_train/{backbone}.log",
    threads: 2
    resources:
        **job_resources(mem_mb=64000, runtime=24 * 60, gpu=videolt_gpus),
    benchmark:
        "logs/benchmarks/videolt_train/{backbone}.tsv"
    message:
        "Training on VideoLT {wildcards.backbone} features"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move train --features {input.features} --split {input.split} --out {output.results}"
        " --checkpoint {output.checkpoint} --settings {params.settings:q} --seed {params.seed}"
        " --head-min {params.groups[head_min]} --tail-max {params.groups[tail_max]}"
        " --dataset videolt > {log} 2>&1"
