# Training and evaluation of one method variant of one run with one seed (the tables gathering
# the runs are drawn in report.smk). A run is a dataset's features of one backbone at one imbalance ratio
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
        results=layout.RESULT,
        per_class=layout.RESULT_PER_CLASS,
        checkpoint=layout.CHECKPOINT,
    wildcard_constraints:
        variant="[a-z0-9_]+",
        seed="[0-9]+",
    params:
        settings=variant_settings_json,
        groups=lambda wc: parse_run(wc.run).groups,
        recorded=lambda wc: parse_run(wc.run).recorded,
    log:
        "logs/train/{run}/{variant}_seed{seed}.log",
    threads: train_threads
    resources:
        **job_resources(mem_mb=run_memory, runtime=run_minutes, gpu=run_gpus),
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
        results=layout.MAIN_RESULT,
        per_class=layout.MAIN_PER_CLASS,
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
