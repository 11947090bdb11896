"""Client side of voice sessions: the session client and simulated audio devices."""
