"""gan_cli: train, sample and evaluate classic GANs from Hydra configs."""

__version__ = "0.1.0"
