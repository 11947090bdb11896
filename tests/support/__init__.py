"""What the tests share: helpers, and the fixtures backed by the embedded models.

Test modules import from here, never from one another. Nothing here imports a model
runtime (faster-whisper, Piper, llama.cpp, openai…) when it is imported: the fast tier
(`make test-fast`) imports these modules from the base install, without any model.
The model-backed fixtures (`model_fixtures.py`) import what they need when a test
marked `models` first asks for them.
"""
