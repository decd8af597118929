# Feature extraction: decode frames with decord, run the backbone, write HDF5.
# Fans out to `extract.shards` jobs (rule extract_shard, one part file each), then
# merge_features joins them into features/{dataset}/{backbone}.h5 (+ .failures.csv).


rule extract_shard:
    input:
        videos=dataset_input("videos"),
        annotations=dataset_input("annotations"),
    output:
        features=temp("features/{dataset}/{backbone}.shard{i}of{n}.h5"),
        failures=temp("features/{dataset}/{backbone}.shard{i}of{n}.failures.csv"),
    wildcard_constraints:
        i="[0-9]+",
        n="[0-9]+",
    params:
        extract=settings("extract"),
        weights=backbone_weights,
    log:
        "logs/extract_shard/{dataset}_{backbone}.shard{i}of{n}.log",
    threads: extract_threads
    resources:
        **job_resources(mem_mb=16000, runtime=shard_runtime, gpu=stage_gpus("extract")),
    benchmark:
        "logs/benchmarks/extract_shard/{dataset}_{backbone}.shard{i}of{n}.tsv"
    message:
        "Extracting {wildcards.backbone} features of {wildcards.dataset}, shard {wildcards.i}/{wildcards.n}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move extract --annotations {input.annotations:q} --videos {input.videos:q}"
        " --out {output.features} --failures {output.failures}"
        " --shard {wildcards.i}/{wildcards.n}"
        " --backbone {wildcards.backbone} --weights {params.weights:q}"
        " --frames {params.extract[frames]} --resize {params.extract[resize]} --crop {params.extract[crop]}"
        " --batch-size {params.extract[batch_size]} --num-workers {params.extract[num_workers]}"
        " --threads {threads} --device {params.extract[device]} --dtype {params.extract[dtype]}"
        " > {log} 2>&1"


rule merge_features:
    input:
        features=shard_parts(".h5"),
        failures=shard_parts(".failures.csv"),
    output:
        features="features/{dataset}/{backbone}.h5",
        failures="features/{dataset}/{backbone}.failures.csv",
    log:
        "logs/merge_features/{dataset}_{backbone}.log",
    benchmark:
        "logs/benchmarks/merge_features/{dataset}_{backbone}.tsv"
    threads: 1
    resources:
        **job_resources(mem_mb=4000, runtime=60),
    message:
        "Merging {wildcards.backbone} feature shards of {wildcards.dataset}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move merge-features {input.features:q} --out {output.features}"
        " --failures {output.failures} > {log} 2>&1"
