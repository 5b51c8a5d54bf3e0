"""Rule generate_concepts: write the concept world's training set and probe set."""


from prunedissect.logs import log_to_file
from prunedissect.data.concepts import generate_concept_dataset

log_to_file(snakemake.log[0], name=__name__)  # noqa: F821

concepts = snakemake.params.concepts  # noqa: F821
generate_concept_dataset(
    probe_dir=snakemake.output.probe,  # noqa: F821
    images_dir=snakemake.output.images,  # noqa: F821
    seed=concepts["seed"],
    image_size=snakemake.params.image_size,  # noqa: F821
    train_per_class=concepts["train_per_class"],
    val_per_class=concepts["val_per_class"],
    probe_images=concepts["probe_images"],
    workers=snakemake.threads,  # noqa: F821
)
