"""A conversation: its bounded history and the agent that answers as a persona."""
