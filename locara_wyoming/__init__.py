"""Locara Wyoming: a local, private voice-to-voice assistant server."""

__version__ = "0.1.0"
