"""The control channel: the token, the settings Home Assistant changes, and the pushes."""
