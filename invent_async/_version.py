"""The version of invent_async, written here only (the package metadata reads it too)."""

__version__ = "0.1.0"
