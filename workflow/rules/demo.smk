# The embedded demo dataset: synthetic videos in a Kinetics-like layout.


rule demo_videos:
    output:
        videos=directory(layout.DEMO_VIDEOS),
        annotations=layout.DEMO_ANNOTATIONS,
    params:
        demo=SETTINGS.demo,
    log:
        "logs/demo_videos/demo.log",
    threads: 1
    resources:
        **job_resources(mem_mb=1000, runtime=10),
    benchmark:
        "logs/benchmarks/demo_videos/demo.tsv"
    message:
        "Writing the synthetic demo videos"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move demo-videos --out data/demo --classes {params.demo[classes]}"
        " --train-per-class {params.demo[train_per_class]} --val-per-class {params.demo[val_per_class]}"
        " --frames {params.demo[frames]} --size {params.demo[size]} --fps {params.demo[fps]}"
        " --seed {params.demo[seed]} --quiet > {log} 2>&1"
