"""stabgen: which regularizers (and which λ and learning rate) make GAN and VAE training stable."""

from stabgen.errors import StabgenError

__all__ = ["StabgenError"]
__version__ = "0.1.0"
