"""thothbot: a self-hosted support desk that lives inside Discord."""

__version__ = "0.1.0"
