# Feature extraction: decode frames with decord, run the backbone, write HDF5.
# Fans out to `extract.shards` jobs (rule extract_shard, one part file each), then
# merge_features joins them into features/{dataset}/{backbone}.h5 (+ .failures.csv).
# Shards copy the videos the previous merged file already holds (--reuse, read only; Snakemake
# removes it only when merge_features starts), so a grown list extracts only the new videos.


rule extract_shard:
    input:
        videos=videos_input,
        annotations=dataset_input("annotations"),
        weights=weights_input,
    output:
        features=temp(layout.FEATURE_SHARD),
        failures=temp(layout.FEATURE_SHARD_FAILURES),
    wildcard_constraints:
        i="[0-9]+",
        n="[0-9]+",
    params:
        extract=settings("extract"),
        sizes=extract_sizes,
        videos=dataset_input("videos"),
        weights=backbone_weights,
        workers=lambda wildcards, threads: max(0, threads - 1),
        reuse=layout.FEATURES,  # the merged file of the previous run
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
        "python -m move extract --annotations {input.annotations:q} --videos {params.videos:q}"
        " --out {output.features} --failures {output.failures}"
        " --shard {wildcards.i}/{wildcards.n} --reuse {params.reuse}"
        " --backbone {wildcards.backbone} --weights {params.weights:q}"
        " --frames {params.extract[frames]} --resize {params.sizes[resize]} --crop {params.sizes[crop]}"
        " --batch-size {params.extract[batch_size]} --num-workers {params.workers}"
        " --threads {threads} --device {params.extract[device]} --dtype {params.extract[dtype]}"
        " --min-decoded-share {params.extract[min_decoded_share]}"
        " > {log} 2>&1"


# Named weights (extract.weights: imagenet, kinetics, or a URL) are downloaded once, on the
# machine running Snakemake (compute nodes may be offline), into torch.hub's cache.
rule fetch_weights:
    output:
        f"{weights_cache_dir()}/{{weights_file}}",
    params:
        backbone=lambda wc: weights_source(wc.weights_file)[0],
        weights=lambda wc: weights_source(wc.weights_file)[1],
    log:
        "logs/fetch_weights/{weights_file}.log",
    wildcard_constraints:
        weights_file="[^/]+",
    resources:
        **job_resources(mem_mb=1000, runtime=30),
    benchmark:
        "logs/benchmarks/fetch_weights/{weights_file}.tsv"
    message:
        "Downloading {params.backbone} weights {params.weights} into torch.hub's cache"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move fetch-weights {params.backbone} {params.weights:q} > {log} 2>&1"


rule merge_features:
    input:
        features=shard_parts(".h5"),
        failures=shard_parts(".failures.csv"),
    output:
        features=layout.FEATURES,
        failures=layout.FEATURE_FAILURES,
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


# A (dataset, backbone) with `datasets.<d>.features.<backbone>` set (a folder of per-video .npy
# arrays: the authors' MiniKinetics200 features) is converted instead of extracted; the split,
# training and tables then run without any video.
ruleorder: npy_features > merge_features


rule npy_features:
    input:
        folder=npy_folder,
        annotations=npy_annotations,
    output:
        features=layout.fill(layout.PAIR_FEATURES, pair="{npy_pair}"),
        failures=layout.fill(layout.PAIR_FAILURES, pair="{npy_pair}"),
    params:
        backbone=lambda wc: npy_parts(wc)[1],
        dtype=lambda wc: dataset_settings(npy_parts(wc)[0]).extract["dtype"],
    log:
        "logs/npy_features/{npy_pair}.log",
    resources:
        **job_resources(mem_mb=8000, runtime=6 * 60),
    benchmark:
        "logs/benchmarks/npy_features/{npy_pair}.tsv"
    message:
        "Converting the .npy features of {wildcards.npy_pair} to HDF5"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move npy-features --features-dir {input.folder:q} --annotations {input.annotations:q}"
        " --backbone {params.backbone} --out {output.features} --dtype {params.dtype}"
        " --quiet > {log} 2>&1"


# The videos of a dataset from the Kinetics-400 mirror (datasets.<d>.kinetics_mirror, `videos`
# unset): every shard of the path lists streamed, its listed members kept in
# data/<d>/kinetics_videos/. It needs the network (the mirror's host): on a cluster whose compute
# nodes cannot reach it, run this one job on the login node first (`snakemake --cores 4
# data/<d>/kinetics_videos.complete`, no profile); elsewhere it is a job like the others
# (resources below; `threads` = parallel downloads). The folder is not declared as an output
# (Snakemake would delete it before a rerun): a rerun resumes, skipping finished shards.
rule fetch_kinetics:
    input:
        annotations=dataset_input("annotations"),
    output:
        touch(layout.MIRROR_COMPLETE),
    params:
        lists=lambda wc: " ".join(shlex.quote(p) for p in mirror_settings(wc)["path_lists"]),
        keep=lambda wc: "--all" if mirror_settings(wc)["keep"] == "all" else "",
        out=lambda wc: mirror_folder(wc),
    threads: lambda wc: mirror_settings(wc)["parallel"]
    log:
        "logs/fetch_kinetics/{dataset}.log",
    resources:
        **job_resources(mem_mb=4000, runtime=48 * 60),
    benchmark:
        "logs/benchmarks/fetch_kinetics/{dataset}.tsv"
    message:
        "Fetching the videos of {wildcards.dataset} from the Kinetics-400 mirror's shards"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move fetch-kinetics {params.lists} --annotations {input.annotations:q}"
        " {params.keep} --out {params.out} --parallel {threads} --quiet > {log} 2>&1"
