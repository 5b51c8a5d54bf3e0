"""Rule generate_concepts: write the concept world's training set and probe set."""


from prunedissect.data.concepts import generate_concept_dataset
from prunedissect.logs import log_to_file

log_to_file(snakemake.log[0], name=__name__)

concepts = snakemake.params.concepts
generate_concept_dataset(
    probe_dir=snakemake.output.probe,
    images_dir=snakemake.output.images,
    seed=concepts["seed"],
    image_size=snakemake.params.image_size,
    train_per_class=concepts["train_per_class"],
    val_per_class=concepts["val_per_class"],
    probe_images=concepts["probe_images"],
    workers=snakemake.threads,
)
