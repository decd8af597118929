# move: raw video -> features -> long-tailed splits -> MOVE -> results JSON.
# Each stage is one file under workflow/rules/; rules call the `move` CLI (no logic here).
# Demo:     snakemake --cores 2 results/demo_ir0.1.json
# Kinetics: set datasets.minikinetics.videos in config.yaml (lists and weights default to the
#           authors'), then snakemake --cores 8 results/minikinetics_ir0.01.json
# Tables:   results/<dataset>_paper.md (the paper's table over `seeds`), results/<dataset>_ablation.md

configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/videolt.smk"
include: "workflow/rules/report.smk"


# Jobs that run where Snakemake runs, never submitted to a cluster: fetching a list or weights
# needs the network (compute nodes often lack it); the others copy or write a few lines (the
# table rules, workflow/rules/report.smk, are local too: `localrule` in each).
localrules:
    fetch_list,
    fetch_weights,
    main_result,
    effective_config,


rule all:
    input:
        default_targets(),
        report_targets("demo"),
    default_target: True
