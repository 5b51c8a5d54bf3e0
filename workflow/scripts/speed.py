"""Rule speed: the dense, masked, slimmed and reduced checkpoints of one trial -> their latency
and throughput on the CPU (and CUDA when the job sees a GPU) -> results/tables/speed.parquet."""

import torch

from prunedissect import slimming, speed, tables
from prunedissect.dissection import build_model, load_state_dict
from prunedissect.logs import log_to_file
from prunedissect.reproducibility import kernel_report

log = log_to_file(snakemake.log[0], name="speed")

params = snakemake.params
settings = params.speed
devices = speed.available_devices(params.device)
log.info("%s; timing on %s", kernel_report(), ", ".join(str(d) for d in devices))
rows = []
# the input function checked every checkpoint's sidecar while the DAG was built
for network, path in zip(params.networks, snakemake.input.models, strict=True):
    state = load_state_dict(path)
    kwargs = speed.network_kwargs(params.arch, state, params.model_kwargs)
    model = build_model(params.arch, state, model_kwargs=kwargs).eval()
    if network["variant"] == "slimmed":
        example = slimming.example_input(params.image_size)
        masked = model
        model = slimming.slim(masked, example)
        difference = slimming.check_slim(masked, model, example)
        log.info(
            "%s: slimmed from %d to %d parameters (max |difference| %.2g)",
            path, slimming.count_parameters(masked), slimming.count_parameters(model), difference,
        )  # fmt: skip
    timings = speed.measure(
        model,
        image_size=params.image_size,
        batch_sizes=settings["batch_sizes"],
        devices=devices,
        threads=snakemake.threads,
        warmup=settings["warmup"],
        repeats=settings["repeats"],
    )
    for timing in timings:
        log.info(
            "%s %s level %d on %s, batch %d: %.3f ms, %.1f images/s",
            network["variant"], network["method"], network["level"], timing["device"],
            timing["batch"], timing["latency_ms"], timing["throughput_img_s"],
        )  # fmt: skip
        rows.append({**network, **timing})
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
accuracy = tables.read_table(snakemake.input.accuracy, table="accuracy")
table = speed.speed_table(rows, accuracy)
tables.write_table(table, snakemake.output[0], table="speed")
log.info("wrote %d timings to %s", len(table), snakemake.output[0])
