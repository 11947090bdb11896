"""What every connection shares: the live configuration, the warm stages, the sessions
and what the server proves itself and checks others with."""

from __future__ import annotations

from dataclasses import dataclass

from .backends.registry import Backends
from .config import LocaraConfig
from .conversation.agent import ConversationAgent
from .security.server_security import ServerSecurity
from .sessions.registry import SessionRegistry
from .stages.loading import Stages


@dataclass
class ServerContext:
    config: LocaraConfig
    """The configuration as it is now. It is owned here and replaced only by the control
    service, under its settings lock, when Home Assistant changes a setting: read it at
    the moment of use, never keep a copy."""
    stages: Stages
    agent: ConversationAgent
    backends: Backends
    sessions: SessionRegistry
    security: ServerSecurity
