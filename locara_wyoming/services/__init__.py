"""The standard Wyoming programs Home Assistant uses: asr, tts and handle."""
