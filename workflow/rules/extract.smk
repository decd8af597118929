# Feature extraction: decode frames with decord, run the backbone, write HDF5.


rule extract:
    input:
        videos=dataset_input("videos"),
        annotations=dataset_input("annotations"),
    output:
        features="features/{dataset}/{backbone}.h5",
        failures="features/{dataset}/{backbone}.failures.csv",
    params:
        extract=settings("extract"),
        weights=backbone_weights,
    log:
        "logs/extract/{dataset}_{backbone}.log",
    threads: 2
    resources:
        mem_mb=8000,
    benchmark:
        "benchmarks/extract/{dataset}_{backbone}.tsv"
    message:
        "Extracting {wildcards.backbone} features of {wildcards.dataset}"
    conda:
        "../../envs/move.yaml"
    shell:
        "python -m move extract --annotations {input.annotations:q} --videos {input.videos:q}"
        " --out {output.features} --failures {output.failures}"
        " --backbone {wildcards.backbone} --weights {params.weights:q}"
        " --frames {params.extract[frames]} --resize {params.extract[resize]} --crop {params.extract[crop]}"
        " --batch-size {params.extract[batch_size]} --num-workers {params.extract[num_workers]}"
        " --device {params.extract[device]} --dtype {params.extract[dtype]} > {log} 2>&1"
