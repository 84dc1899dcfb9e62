"""gan_cli's Hydra plugin: Hydra instantiates sweepers only from the hydra_plugins namespace package."""
