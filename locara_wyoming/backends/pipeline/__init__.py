"""The cascaded backend: Silero VAD → faster-whisper → LLM → Piper, clause by clause."""
