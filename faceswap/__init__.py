"""faceswap: a self-hosted video face-swap studio and API."""

__version__ = "0.1.0"
