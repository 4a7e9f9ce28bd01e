"""The per-app service container the factory assembles and views look up."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from app.agent.service import Agent
from app.auth import KeyChecker
from app.capabilities import CapabilityTable
from app.config import Config
from app.drain import DrainFlag, InflightLimiter
from app.orchestrator import Orchestrator
from app.providers.base import Provider
from app.recorder import Recorder
from app.resilience import BreakerRegistry, LoadShedder


@dataclass
class Services:
    """Everything a request needs beyond the request itself."""

    config: Config
    drain: DrainFlag
    limiter: InflightLimiter
    keys: KeyChecker
    capabilities: CapabilityTable
    providers: dict[str, Provider]
    recorder: Recorder
    orchestrator: Orchestrator
    breakers: BreakerRegistry
    shedder: LoadShedder
    agent: Agent

    @property
    def provider(self) -> Provider:
        """The configured ``MODEL_PROVIDER``."""
        return self.providers[self.config.model_provider]


def services() -> Services:
    """The current app's services."""
    return current_app.extensions["lynkr"]
