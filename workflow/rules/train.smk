# Training and evaluation of MOVE on one dataset at one imbalance ratio.


rule train:
    input:
        features=lambda wc: f"features/{wc.dataset}/{train_backbone(wc.dataset)}.h5",
        split="splits/{dataset}_ir{ir}.csv",
    output:
        results="results/{dataset}_ir{ir}.json",
        per_class="results/{dataset}_ir{ir}.per_class.csv",
        checkpoint="results/{dataset}_ir{ir}.pt",
    params:
        settings=lambda wc: json.dumps(stage_settings(config, wc.dataset, "train")),
        groups=groups,
        seed=config["seed"],
    log:
        "logs/train/{dataset}_ir{ir}.log",
    threads: 2
    resources:
        mem_mb=8000,
    benchmark:
        "benchmarks/train/{dataset}_ir{ir}.tsv"
    message:
        "Training {wildcards.dataset} at IR {wildcards.ir}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move train --features {input.features} --split {input.split} --out {output.results}"
        " --checkpoint {output.checkpoint} --settings {params.settings:q} --seed {params.seed}"
        " --head-min {params.groups[head_min]} --tail-max {params.groups[tail_max]} > {log} 2>&1"
