# Figures and tables of the runs, and what `snakemake --report results/report.html` shows.
# Each figure rule writes a PNG and the CSV of its numbers (figures/...); all call `move plot`.
# Functions: common.smk (dataset_results, dataset_figures, report_targets, figure, table).


rule plot_per_class_ap:
    input:
        dataset_results,
    output:
        png=figure("per_class_ap", "per_class_ap"),
        csv=table("per_class_ap"),
    log:
        "logs/plot/{dataset}_per_class_ap.log",
    resources:
        **job_resources(mem_mb=2000, runtime=15),
    benchmark:
        "logs/benchmarks/plot_per_class_ap/{dataset}.tsv"
    message:
        "Plotting per-class AP of {wildcards.dataset}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move plot per-class-ap --results {input} --out {output.png} > {log} 2>&1"


rule plot_map_vs_ir:
    input:
        dataset_results,
    output:
        png=figure("map_vs_ir", "map_vs_ir"),
        csv=table("map_vs_ir"),
    log:
        "logs/plot/{dataset}_map_vs_ir.log",
    resources:
        **job_resources(mem_mb=2000, runtime=15),
    benchmark:
        "logs/benchmarks/plot_map_vs_ir/{dataset}.tsv"
    message:
        "Plotting mAP against imbalance ratio of {wildcards.dataset}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move plot map-vs-ir --results {input} --out {output.png} > {log} 2>&1"


rule plot_curves:
    input:
        dataset_results,
    output:
        png=figure("curves", "curves"),
        csv=table("curves"),
    log:
        "logs/plot/{dataset}_curves.log",
    resources:
        **job_resources(mem_mb=2000, runtime=15),
    benchmark:
        "logs/benchmarks/plot_curves/{dataset}.tsv"
    message:
        "Plotting training curves of {wildcards.dataset}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move plot curves --results {input} --out {output.png} > {log} 2>&1"


rule plot_attention:
    input:
        checkpoint="results/{dataset}_ir{ir}.pt",
        features=lambda wc: f"features/{wc.dataset}/{train_backbone(wc.dataset)}.h5",
        split="splits/{dataset}_ir{ir}.csv",
        annotations=dataset_input("annotations"),
        videos=dataset_input("videos"),
    output:
        png=figure("attention", "attention", "{dataset}_ir{ir}"),
        csv=table("attention", "{dataset}_ir{ir}"),
    log:
        "logs/plot/{dataset}_ir{ir}_attention.log",
    resources:
        **job_resources(mem_mb=8000, runtime=30),
    benchmark:
        "logs/benchmarks/plot_attention/{dataset}_ir{ir}.tsv"
    message:
        "Plotting PSA attention and codebook assignments of {wildcards.dataset} at IR {wildcards.ir}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move plot attention --checkpoint {input.checkpoint} --features {input.features}"
        " --split {input.split} --annotations {input.annotations:q} --videos {input.videos:q}"
        " --count 2 --out {output.png} > {log} 2>&1"


rule plot_confidence:
    input:
        checkpoint="results/{dataset}_ir{ir}.pt",
        features=lambda wc: f"features/{wc.dataset}/{train_backbone(wc.dataset)}.h5",
        split="splits/{dataset}_ir{ir}.csv",
    output:
        png=figure("confidence", "confidence", "{dataset}_ir{ir}"),
        csv=table("confidence", "{dataset}_ir{ir}"),
    log:
        "logs/plot/{dataset}_ir{ir}_confidence.log",
    resources:
        **job_resources(mem_mb=8000, runtime=30),
    benchmark:
        "logs/benchmarks/plot_confidence/{dataset}_ir{ir}.tsv"
    message:
        "Plotting original vs. interpolated confidence of {wildcards.dataset} at IR {wildcards.ir}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move plot confidence --checkpoint {input.checkpoint} --features {input.features}"
        " --split {input.split} --subset train --out {output.png} > {log} 2>&1"


rule effective_config:
    output:
        report("figures/config.yaml", caption="../report/config.rst", category="Configuration"),
    params:
        config=config,
    log:
        "logs/effective_config/config.log",
    resources:
        **job_resources(mem_mb=1000, runtime=5),
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
        "logs/plot/{dataset}_runtimes.log",
    resources:
        **job_resources(mem_mb=2000, runtime=15),
    message:
        "Plotting the runtime of each job of {wildcards.dataset}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move plot runtimes --benchmarks logs/benchmarks --dataset {wildcards.dataset}"
        " --out {output.png} > {log} 2>&1"


# `snakemake report_<dataset>` draws every figure of a dataset the config names;
# `snakemake --report results/<dataset>_report.html report_<dataset>` gathers them in one page.
for report_dataset in config["datasets"]:

    rule:
        name:
            f"report_{report_dataset}"
        input:
            report_targets(report_dataset),
