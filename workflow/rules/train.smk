# Training and evaluation of one method variant of one run with one seed, and the tables
# gathering the runs. A run is a dataset's features of one backbone at one imbalance ratio
# (`<dataset>/<backbone>/ir<IR>`) or VideoLT's of one backbone (`videolt/<backbone>`); its files
# are results/<run>/<variant>/seed<k>.json (+ .per_class.csv, .pt), so backbones and seeds live
# side by side. Each (run, variant, seed) is trained once, by rule train; the short targets
# (results/<dataset>_ir<IR>.json, results/videolt_<backbone>.json) are copies of the configured
# backbone, variant and seed (rule main_result), never a second training.

#
# A killed train job leaves its resume state, results/<run>/<variant>/seed<k>.pt.partial. It is
# deliberately not an output: Snakemake deletes a job's outputs before running it (and those of
# an incomplete job under --rerun-incomplete), which would throw away every resume. Instead the
# state names what it was made from (settings' fingerprint, sha256 of the features and the
# split): the rerun of the same job resumes it; after an edited input (a rebuilt split, other
# features) the job reruns, as Snakemake decides from its inputs, and `move train` sets the old
# state aside in one line and trains afresh. `move train` holds <checkpoint>.lock meanwhile.


rule train:
    input:
        features=training_features,
        split=lambda wc: parse_run(wc.run).split(int(wc.seed)),
    output:
        results="results/{run}/{variant}/seed{seed}.json",
        per_class="results/{run}/{variant}/seed{seed}.per_class.csv",
        checkpoint="results/{run}/{variant}/seed{seed}.pt",
    wildcard_constraints:
        variant="[a-z0-9_]+",
        seed="[0-9]+",
    params:
        settings=variant_settings_json,
        groups=lambda wc: parse_run(wc.run).groups,
        recorded=lambda wc: parse_run(wc.run).recorded,
    log:
        "logs/train/{run}/{variant}_seed{seed}.log",
    threads: 2
    resources:
        **job_resources(mem_mb=run_memory, runtime=run_hours, gpu=run_gpus),
    benchmark:
        "logs/benchmarks/train/{run}/{variant}_seed{seed}.tsv"
    message:
        "Training {wildcards.variant} on {wildcards.run}, seed {wildcards.seed}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move train --features {input.features} --split {input.split} --out {output.results}"
        " --checkpoint {output.checkpoint} --settings {params.settings:q} --seed {wildcards.seed}"
        " --head-min {params.groups[head_min]} --tail-max {params.groups[tail_max]}"
        " {params.recorded} > {log} 2>&1"


# The configured backbone, method (train.method + train.aggregators) and seed of a short run
# name (demo_ir0.1, videolt_resnet50) as its main result.
rule main_result:
    input:
        results=lambda wc: main_result_file(wc.short, ".json"),
        per_class=lambda wc: main_result_file(wc.short, ".per_class.csv"),
    output:
        results="results/{short}.json",
        per_class="results/{short}.per_class.csv",
    log:
        "logs/main_result/{short}.log",
    resources:
        **job_resources(mem_mb=1000, runtime=5),
    benchmark:
        "logs/benchmarks/main_result/{short}.tsv"
    message:
        "Main result of {wildcards.short}: {input.results}"
    run:
        from move.files import copy_file_atomic, write_text_atomic

        copy_file_atomic(input.results, output.results)
        copy_file_atomic(input.per_class, output.per_class)
        write_text_atomic(f"copied {input.results} and {input.per_class}\n", log[0])


rule methods_table:
    input:
        lambda wc: [table_run(wc.dataset).result(v, SETTINGS.seed) for v in table_methods()],
    output:
        md="results/{dataset}_table.md",
        csv="results/{dataset}_table.csv",
    params:
        pairs=lambda wc, input: " ".join(
            f"{v}={path}" for v, path in zip(table_methods(), input, strict=True)
        ),
        title=lambda wc: (
            f"{wc.dataset}, {table_run(wc.dataset).backbone}, IR {table_ir(wc.dataset)}, seed "
            f"{SETTINGS.seed}: final-epoch metrics"
        ),
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


# The paper's table over seeds: Table 3 (a dataset with imbalance ratios: its rows at every IR,
# for each of its backbones) or Tables 1-2 (VideoLT: every variant, each backbone), every cell
# averaged over `seeds`, the paper's numbers beside.
rule paper_table:
    input:
        paper_table_results,
    output:
        md="results/{table_dataset}_paper.md",
        csv="results/{table_dataset}_paper.csv",
    params:
        rows=lambda wc: " ".join(paper_table_rows(wc.table_dataset)),
    log:
        "logs/paper_table/{table_dataset}.log",
    resources:
        **job_resources(mem_mb=2000, runtime=10),
    benchmark:
        "logs/benchmarks/paper_table/{table_dataset}.tsv"
    message:
        "The paper's table of {wildcards.table_dataset} over seeds {SETTINGS.seeds}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move paper-table {input:q} --rows {params.rows} --out-md {output.md}"
        " --out-csv {output.csv} > {log} 2>&1"


# The extended table: the paper table's rows, then the long-tail baselines since 2020 (logit
# adjustment, decoupling, weight balancing), with and without aggregators, in the paper table's
# format and guards (every cell over `seeds`, each run trained once whichever table asks).
rule extended_table:
    input:
        extended_table_results,
    output:
        md="results/{table_dataset}_extended.md",
        csv="results/{table_dataset}_extended.csv",
    params:
        rows=lambda wc: " ".join(extended_table_rows(wc.table_dataset)),
    log:
        "logs/extended_table/{table_dataset}.log",
    resources:
        **job_resources(mem_mb=2000, runtime=10),
    benchmark:
        "logs/benchmarks/extended_table/{table_dataset}.tsv"
    message:
        "The extended table of {wildcards.table_dataset} over seeds {SETTINGS.seeds}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move paper-table {input:q} --rows {params.rows} --out-md {output.md}"
        " --out-csv {output.csv} > {log} 2>&1"


# Table 4's ablation rows (a)-(g) over seeds, on the dataset's ablation backbone (VideoLT:
# ResNet-101, as the paper) at its table IR. Rows whose settings equal a table variant's are that
# variant's runs (e.g. (g) is `move`), trained once for both tables.
rule ablation_table:
    input:
        lambda wc: [path for _, path in ablation_results(wc.table_dataset)],
    output:
        md="results/{table_dataset}_ablation.md",
        csv="results/{table_dataset}_ablation.csv",
    params:
        pairs=lambda wc: " ".join(
            f"{row}={path}" for row, path in ablation_results(wc.table_dataset)
        ),
    log:
        "logs/ablation_table/{table_dataset}.log",
    resources:
        **job_resources(mem_mb=2000, runtime=10),
    benchmark:
        "logs/benchmarks/ablation_table/{table_dataset}.tsv"
    message:
        "Table 4's ablation of {wildcards.table_dataset} over seeds {SETTINGS.seeds}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move ablation-table {params.pairs} --out-md {output.md}"
        " --out-csv {output.csv} > {log} 2>&1"
