"""Evaluation against real MNIST with a shipped classifier: FID, KID, IS, precision/recall, mode
coverage, label and code accuracy (see suite.py for how they are put together)."""
