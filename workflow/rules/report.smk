# Tables and figures of the runs, and what `snakemake --report results/report.html` shows.
# Each figure rule writes a PNG and the CSV of its numbers (figures/...); each calls `move plot`.
# Functions: common.smk (dataset_results, dataset_figures, report_targets, figure, table,
# table_inputs, table_arguments).


# One rule per declared table (move.reporting.registry; the built-in ones in
# move/reporting/table_declarations.py): results/<dataset>_<name>.md (and .csv), drawn by
# `move draw-table <name>` from the results files move.table_planning plans for it. The rule is
# the declaration's (methods_table, imbalance_table, paper_table, extended_table, ablation_table,
# or <name>_table). Each directive but `shell:` is evaluated here, once per table; Snakemake
# evaluates `shell:` when a job runs, after the loop, so it names no loop variable (it would be
# the last table's for every job): the table's name and files come in `params.arguments`.
for declared in tables().values():
    # a dataset with imbalance ratios (`dataset`), or any, those with their own split included
    # (`table_dataset`)
    table_wildcard = "dataset" if declared.needs_imbalance_ratios else "table_dataset"

    rule:
        name:
            declared.rule_name
        input:
            table_inputs(declared.name, table_wildcard),
        output:
            **declared.outputs(f"{{{table_wildcard}}}"),
        params:
            arguments=table_arguments(declared.name, table_wildcard),
        log:
            f"logs/{declared.rule_name}/{{{table_wildcard}}}.log",
        resources:
            **job_resources(mem_mb=declared.mem_mb, runtime=10),
        benchmark:
            f"logs/benchmarks/{declared.rule_name}/{{{table_wildcard}}}.tsv"
        message:
            f"{declared.title}: {{wildcards.{table_wildcard}}}"
        localrule: True
        conda:
            "../../envs/move.yaml"
        shell:
            "python -m move draw-table {params.arguments} > {log} 2>&1"


# per-class AP (head -> tail), mAP against the imbalance ratio, loss and mAP per epoch: each
# drawn from the results of every configured IR of the dataset.
rule plot_results:
    input:
        dataset_results,
    output:
        png=figure("{figure}", "results_figure"),
        csv=table("{figure}"),
    wildcard_constraints:
        figure="per_class_ap|map_vs_ir|curves",
    params:
        figure=lambda wc: wc.figure.replace("_", "-"),
        seeds=", ".join(map(str, SETTINGS.seeds)),
    log:
        "logs/plot_results/{dataset}_{figure}.log",
    resources:
        **job_resources(mem_mb=2000, runtime=15),
    benchmark:
        "logs/benchmarks/plot_results/{dataset}_{figure}.tsv"
    message:
        "Plotting {wildcards.figure} of {wildcards.dataset}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move plot {params.figure} --results {input} --out {output.png} > {log} 2>&1"


# PSA attention and codebook assignments of test videos (Fig. 2), and original vs interpolated
# confidence per class (Fig. 4): each drawn from the main run's checkpoint at one IR.
rule plot_model:
    input:
        checkpoint=lambda wc: main_run_file(wc, ".pt"),
        features=main_run_features,
        split=main_run_split,
        annotations=for_attention(dataset_input("annotations")),
        videos=for_attention(dataset_input("videos")),
    output:
        png=figure("{figure}", "model_figure", layout.IR_FIGURES),
        csv=table("{figure}", layout.IR_FIGURES),
    wildcard_constraints:
        figure="attention|confidence",
    params:
        options=model_figure_options,
    log:
        "logs/plot_model/{dataset}_ir{ir}_{figure}.log",
    resources:
        **job_resources(mem_mb=8000, runtime=30),
    benchmark:
        "logs/benchmarks/plot_model/{dataset}_ir{ir}_{figure}.tsv"
    message:
        "Plotting {wildcards.figure} of {wildcards.dataset} at IR {wildcards.ir}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move plot {wildcards.figure} --checkpoint {input.checkpoint}"
        " --features {input.features} --split {input.split} {params.options}"
        " --out {output.png} > {log} 2>&1"


rule effective_config:
    output:
        report(layout.EFFECTIVE_CONFIG, caption="../report/config.rst", category="Configuration"),
    params:
        config=effective_config(config),
    log:
        "logs/effective_config/config.log",
    resources:
        **job_resources(mem_mb=1000, runtime=5),
    benchmark:
        "logs/benchmarks/effective_config/config.tsv"
    message:
        "Writing the effective configuration"
    run:
        import yaml
        from move.files import write_text_atomic

        write_text_atomic(yaml.safe_dump(params.config, sort_keys=False), output[0])
        write_text_atomic(f"wrote {output[0]}\n", log[0])


rule plot_runtimes:
    input:
        # every other figure of the dataset: its jobs (and the stages they need) have finished
        lambda wc: dataset_figures(wc.dataset),
    output:
        png=figure("runtimes", "runtimes"),
        csv=table("runtimes"),
    log:
        "logs/plot_runtimes/{dataset}.log",
    resources:
        **job_resources(mem_mb=2000, runtime=15),
    benchmark:
        "logs/benchmarks/plot_runtimes/{dataset}.tsv"
    message:
        "Plotting the runtime of each job of {wildcards.dataset}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move plot runtimes --benchmarks logs/benchmarks --dataset {wildcards.dataset}"
        " --out {output.png} > {log} 2>&1"


# `snakemake report_<dataset>` draws every figure of a dataset the config names;
# `snakemake --report results/<dataset>_report.html report_<dataset>` gathers them in one page.
for report_dataset in DRAWN_DATASETS:

    rule:
        name:
            f"report_{report_dataset}"
        input:
            report_targets(report_dataset),
