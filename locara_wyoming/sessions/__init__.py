"""Full-duplex voice sessions: a satellite's connection to a backend."""
