"""Build Nix flake outputs, account for every cache hit and miss, and check reproducibility."""

__version__ = "1.0.0"
