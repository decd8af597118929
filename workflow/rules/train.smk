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
        **job_resources(mem_mb=32000, runtime=6 * 60, gpu=stage_gpus("train")),
    benchmark:
        "logs/benchmarks/train/{dataset}_ir{ir}.tsv"
    message:
        "Training {wildcards.dataset} at IR {wildcards.ir}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move train --features {input.features} --split {input.split} --out {output.results}"
        " --checkpoint {output.checkpoint} --settings {params.settings:q} --seed {params.seed}"
        " --head-min {params.groups[head_min]} --tail-max {params.groups[tail_max]}"
        " --dataset {wildcards.dataset} --imbalance-ratio {wildcards.ir} > {log} 2>&1"


# Every method of the table (config `table.methods`: <method> or <method>_agg, and move) at one IR.
rule train_method:
    input:
        features=lambda wc: f"features/{wc.dataset}/{train_backbone(wc.dataset)}.h5",
        split="splits/{dataset}_ir{ir}.csv",
    output:
        results="results/{dataset}_ir{ir}/{variant}.json",
        per_class="results/{dataset}_ir{ir}/{variant}.per_class.csv",
        checkpoint="results/{dataset}_ir{ir}/{variant}.pt",
    wildcard_constraints:
        variant="[a-z_]+",
    params:
        settings=variant_settings_json,
        groups=groups,
        seed=config["seed"],
    log:
        "logs/train/{dataset}_ir{ir}_{variant}.log",
    threads: 2
    resources:
        **job_resources(mem_mb=32000, runtime=6 * 60, gpu=stage_gpus("train")),
    message:
        "Training {wildcards.variant} on {wildcards.dataset} at IR {wildcards.ir}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move train --features {input.features} --split {input.split} --out {output.results}"
        " --checkpoint {output.checkpoint} --settings {params.settings:q} --seed {params.seed}"
        " --head-min {params.groups[head_min]} --tail-max {params.groups[tail_max]}"
        " --dataset {wildcards.dataset} --imbalance-ratio {wildcards.ir} > {log} 2>&1"


rule methods_table:
    input:
        lambda wc: [
            f"results/{wc.dataset}_ir{table_ir(wc.dataset)}/{v}.json" for v in table_methods()
        ],
    output:
        md="results/{dataset}_table.md",
        csv="results/{dataset}_table.csv",
    params:
        pairs=lambda wc, input: " ".join(
            f"{v}={path}" for v, path in zip(table_methods(), input, strict=True)
        ),
        title=lambda wc: f"{wc.dataset}, IR {table_ir(wc.dataset)}: final-epoch metrics",
    log:
        "logs/table/{dataset}.log",
    resources:
        **job_resources(mem_mb=1000, runtime=10),
    message:
        "Methods table for {wildcards.dataset}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move table {params.pairs} --out-md {output.md} --out-csv {output.csv}"
        " --title {params.title:q} > {log} 2>&1"
