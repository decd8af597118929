# Training and evaluation of one method variant in one run, and the tables gathering the runs. A
# run is a dataset at an imbalance ratio (`<dataset>_ir<IR>`) or VideoLT's features of a backbone
# (`videolt_<backbone>`). Each (run, variant) is trained once, by rule train; the main result
# results/<run>.json is a copy of the configured variant's run (rule main_result), never a second
# training.


rule train:
    input:
        features=run_input("features"),
        split=run_input("split"),
    output:
        results="results/{run}/{variant}.json",
        per_class="results/{run}/{variant}.per_class.csv",
        checkpoint="results/{run}/{variant}.pt",
    wildcard_constraints:
        variant="[a-z0-9_]+",
    params:
        settings=variant_settings_json,
        groups=lambda wc: parse_run(wc.run).groups,
        seed=SETTINGS.seed,
        recorded=lambda wc: parse_run(wc.run).recorded,
    log:
        "logs/train/{run}_{variant}.log",
    threads: 2
    resources:
        **job_resources(mem_mb=run_memory, runtime=run_hours, gpu=run_gpus),
    benchmark:
        "logs/benchmarks/train/{run}_{variant}.tsv"
    message:
        "Training {wildcards.variant} on {wildcards.run}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move train --features {input.features} --split {input.split} --out {output.results}"
        " --checkpoint {output.checkpoint} --settings {params.settings:q} --seed {params.seed}"
        " --head-min {params.groups[head_min]} --tail-max {params.groups[tail_max]}"
        " {params.recorded} > {log} 2>&1"


# The configured method's run (train.method + train.aggregators) as the dataset's main result.
rule main_result:
    input:
        results=lambda wc: f"results/{wc.run}/{parse_run(wc.run).variant}.json",
        per_class=lambda wc: f"results/{wc.run}/{parse_run(wc.run).variant}.per_class.csv",
    output:
        results="results/{run}.json",
        per_class="results/{run}.per_class.csv",
    log:
        "logs/main_result/{run}.log",
    resources:
        **job_resources(mem_mb=1000, runtime=5),
    benchmark:
        "logs/benchmarks/main_result/{run}.tsv"
    message:
        "Main result of {wildcards.run}: {input.results}"
    run:
        from move.files import copy_file_atomic, write_text_atomic

        copy_file_atomic(input.results, output.results)
        copy_file_atomic(input.per_class, output.per_class)
        write_text_atomic(f"copied {input.results} and {input.per_class}\n", log[0])


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
        "logs/methods_table/{dataset}.log",
    resources:
        **job_resources(mem_mb=1000, runtime=10),
    benchmark:
        "logs/benchmarks/methods_table/{dataset}.tsv"
    message:
        "Methods table for {wildcards.dataset}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move table {params.pairs} --out-md {output.md} --out-csv {output.csv}"
        " --title {params.title:q} > {log} 2>&1"
