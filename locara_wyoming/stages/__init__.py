"""Model stages shared by every service and session: VAD, STT, LLM, TTS."""
