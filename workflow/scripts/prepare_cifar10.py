"""Rule prepare_cifar10: download CIFAR-10 (MD5-verified) and write it as ImageFolder PNGs."""


from prunedissect.data.cifar import prepare_cifar10
from prunedissect.logs import log_to_file

log_to_file(snakemake.log[0], name=__name__)

prepare_cifar10(
    snakemake.output.images,
    url=snakemake.params.url,
    md5=snakemake.params.md5,
)
