"""What the satellite hears: speech (VAD), the wake word, and whether a conversation is open."""
