# Long-tailed benchmark splits at each imbalance ratio.


rule split:
    input:
        annotations=dataset_input("annotations"),
        features=lambda wc: f"features/{wc.dataset}/{train_backbone(wc.dataset)}.h5",
    output:
        split="splits/{dataset}_ir{ir}.csv",
        class_counts="splits/{dataset}_ir{ir}.class_counts.csv",
    params:
        max_per_class=lambda wc: config["datasets"][wc.dataset]["max_per_class"],
        groups=groups,
        selection=config["split"]["selection"],
        seed=config["seed"],
    log:
        "logs/split/{dataset}_ir{ir}.log",
    benchmark:
        "benchmarks/split/{dataset}_ir{ir}.tsv"
    message:
        "Building the long-tailed split of {wildcards.dataset} at IR {wildcards.ir}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move split --annotations {input.annotations:q} --features {input.features}"
        " --ir {wildcards.ir} --max-per-class {params.max_per_class}"
        " --head-min {params.groups[head_min]} --tail-max {params.groups[tail_max]}"
        " --selection {params.selection} --seed {params.seed}"
        " --out {output.split} --class-counts {output.class_counts} > {log} 2>&1"
