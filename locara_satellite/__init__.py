"""Locara's room satellite: microphone and speaker for one room, talking to a Locara server."""
