"""Rule prepare_cifar10: download CIFAR-10 (MD5-verified) and write it as ImageFolder PNGs."""


from prunedissect.logs import log_to_file
from prunedissect.data.cifar import prepare_cifar10

log_to_file(snakemake.log[0], name=__name__)  # noqa: F821

prepare_cifar10(
    snakemake.output.images,  # noqa: F821
    url=snakemake.params.url,  # noqa: F821
    md5=snakemake.params.md5,  # noqa: F821
)
