"""Voice-session backends: what turns a room's microphone stream into the assistant's voice."""
