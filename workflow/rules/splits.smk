# Long-tailed benchmark splits at each imbalance ratio, the lists they come from, and the missing
# videos.


rule fetch_list:
    output:
        layout.LIST,
    params:
        source=list_source,
        sha256=dataset_list_sha256,
    log:
        "logs/fetch_list/{dataset}_{name}.log",
    wildcard_constraints:
        name="(train|val)\\.txt|kinetics[0-9]+\\.csv",
    resources:
        **job_resources(mem_mb=1000, runtime=10),
    benchmark:
        "logs/benchmarks/fetch_list/{dataset}_{name}.tsv"
    message:
        "Fetching {wildcards.name} of {wildcards.dataset} (sha256 pinned beside it)"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move fetch-list {params.source:q} --out {output} {params.sha256} > {log} 2>&1"


rule list_annotations:
    input:
        train=layout.fill(layout.LIST, name="train.txt"),
        val=layout.fill(layout.LIST, name="val.txt"),
        kinetics=kinetics_annotations,
    output:
        layout.LIST_ANNOTATIONS,
    log:
        "logs/list_annotations/{dataset}.log",
    resources:
        **job_resources(mem_mb=2000, runtime=15),
    benchmark:
        "logs/benchmarks/list_annotations/{dataset}.tsv"
    message:
        "Joining the lists of {wildcards.dataset} with the Kinetics-400 annotations"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move list-annotations --train-list {input.train} --val-list {input.val}"
        " --kinetics {input.kinetics:q} --out {output} > {log} 2>&1"


rule missing:
    input:
        annotations=dataset_input("annotations"),
        features=features_file,
        failures=failures_file,
    output:
        layout.MISSING,
    params:
        max_share=lambda wc: max_missing_share(wc.dataset),
    log:
        "logs/missing/{dataset}.log",
    resources:
        **job_resources(mem_mb=4000, runtime=30),
    benchmark:
        "logs/benchmarks/missing/{dataset}.tsv"
    message:
        "Listing the videos of {wildcards.dataset} that have no file or no features"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move missing --annotations {input.annotations:q} --features {input.features}"
        " --failures {input.failures} --max-missing-share {params.max_share}"
        " --share-key datasets.{wildcards.dataset}.max_missing_share --out {output} > {log} 2>&1"


# The long-tailed split of one IR: splits/<d>_ir<IR>.csv from the videos that have features (one
# for every seed: the authors' `first` selection draws nothing; with split.selection random, seed
# k draws splits/<d>_ir<IR>_seed<k>.csv), or
# splits/lists/<d>_ir<IR>.csv from the authors' lists alone (no videos, no features: which videos
# to fetch, or what to compare with another paper's split). `snakemake list_splits` writes the
# latter for every IR of every dataset with lists.
rule split:
    input:
        annotations=dataset_input("annotations"),
        features=with_features(features_file),
        failures=with_features(failures_file),
        missing=with_features(layout.MISSING),
    output:
        split=layout.SPLIT,
        class_counts=layout.SPLIT_CLASS_COUNTS,
    wildcard_constraints:
        lists="(lists/)?",
        drawn="(_seed[0-9]+)?",
    params:
        max_per_class=lambda wc: dataset_settings(wc.dataset).max_per_class,
        groups=groups,
        selection=SETTINGS.selection,
        seed=split_seed,
        class_order=class_order_option,
        features=feature_options,
    log:
        "logs/split/{lists}{dataset}_ir{ir}{drawn}.log",
    threads: 1
    resources:
        **job_resources(mem_mb=4000, runtime=30),
    benchmark:
        "logs/benchmarks/split/{lists}{dataset}_ir{ir}{drawn}.tsv"
    message:
        "Building the long-tailed split of {wildcards.dataset} at IR {wildcards.ir} {params.features[0]}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move split --annotations {input.annotations:q} --ir {wildcards.ir}"
        " --max-per-class {params.max_per_class}"
        " --head-min {params.groups[head_min]} --tail-max {params.groups[tail_max]}"
        " --selection {params.selection} --seed {params.seed} {params.class_order} {params.features[1]}"
        " --out {output.split} --class-counts {output.class_counts} > {log} 2>&1"


rule list_splits:
    input:
        list_split_targets(),
    message:
        "Splits of every imbalance ratio from the lists alone"
