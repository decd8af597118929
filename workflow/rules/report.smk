# Figures and tables of the runs, and what `snakemake --report results/report.html` shows.
# Each figure rule writes a PNG and the CSV of its numbers (figures/...); all call `move plot`.


def dataset_results(wildcards):
    """Results JSONs of every configured imbalance ratio of a dataset."""
    ratios = config["datasets"][wildcards.dataset]["imbalance_ratios"]
    return [f"results/{wildcards.dataset}_ir{ir}.json" for ir in ratios]


def report_targets(datasets=("demo",)):
    """Every figure and table of the given datasets (the default target builds the demo's)."""
    targets = ["figures/config.yaml", "figures/runtimes.png"]
    for dataset in datasets:
        targets += [
            f"figures/{dataset}/{name}.png" for name in ("per_class_ap", "map_vs_ir", "curves")
        ]
        for ir in config["datasets"][dataset]["imbalance_ratios"]:
            targets += [f"figures/{dataset}_ir{ir}/{name}.png" for name in ("attention", "confidence")]
    return targets


def figure(name, caption, subcategory="{dataset}"):
    return report(
        f"figures/{subcategory}/{name}.png",
        caption=f"../report/{caption}.rst",
        category="Figures",
        subcategory=subcategory,
        labels={"figure": name.replace("_", " ")},
    )


def table(name, subcategory="{dataset}"):
    return report(
        f"figures/{subcategory}/{name}.csv",
        caption="../report/table.rst",
        category="Tables",
        subcategory=subcategory,
        labels={"table": name.replace("_", " ")},
    )


rule plot_per_class_ap:
    input:
        dataset_results,
    output:
        png=figure("per_class_ap", "per_class_ap"),
        csv=table("per_class_ap"),
    log:
        "logs/plot/{dataset}_per_class_ap.log",
    benchmark:
        "logs/benchmarks/plot_per_class_ap/{dataset}.tsv"
    message:
        "Plotting per-class AP of {wildcards.dataset}"
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
    benchmark:
        "logs/benchmarks/plot_map_vs_ir/{dataset}.tsv"
    message:
        "Plotting mAP against imbalance ratio of {wildcards.dataset}"
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
    benchmark:
        "logs/benchmarks/plot_curves/{dataset}.tsv"
    message:
        "Plotting training curves of {wildcards.dataset}"
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
    benchmark:
        "logs/benchmarks/plot_attention/{dataset}_ir{ir}.tsv"
    message:
        "Plotting PSA attention and codebook assignments of {wildcards.dataset} at IR {wildcards.ir}"
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
    benchmark:
        "logs/benchmarks/plot_confidence/{dataset}_ir{ir}.tsv"
    message:
        "Plotting original vs. interpolated confidence of {wildcards.dataset} at IR {wildcards.ir}"
    shell:
        "python -m move plot confidence --checkpoint {input.checkpoint} --features {input.features}"
        " --split {input.split} --subset train --out {output.png} > {log} 2>&1"


rule report_config:
    output:
        report("figures/config.yaml", caption="../report/config.rst", category="Configuration"),
    params:
        config=config,
    message:
        "Writing the effective configuration"
    run:
        import yaml

        with open(output[0], "w") as handle:
            yaml.safe_dump(params.config, handle, sort_keys=False)


rule plot_runtimes:
    input:
        # every other report output: their jobs (and the stages they need) have written benchmarks
        [t for t in report_targets() if t not in ("figures/runtimes.png", "figures/config.yaml")],
    output:
        png=report(
            "figures/runtimes.png",
            caption="../report/runtimes.rst",
            category="Runtime",
            labels={"figure": "runtime per job"},
        ),
        csv=report(
            "figures/runtimes.csv",
            caption="../report/table.rst",
            category="Runtime",
            labels={"figure": "runtime per job (table)"},
        ),
    log:
        "logs/plot/runtimes.log",
    message:
        "Plotting the runtime of each stage"
    shell:
        "python -m move plot runtimes --benchmarks logs/benchmarks --out {output.png} > {log} 2>&1"
