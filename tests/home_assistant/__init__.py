"""Home Assistant against a real Locara server (run from .venv-ha; see pytest.ini)."""
