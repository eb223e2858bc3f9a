"""ganjax: GAN-based data augmentation in JAX/Flax."""

__version__ = "0.1.0"
