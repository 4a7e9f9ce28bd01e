"""The per-app service container the factory assembles and views look up."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from app.accounting.auth import KeyChecker
from app.agent.service import Agent
from app.config import Config
from app.orchestrator import Orchestrator
from app.providers.base import Provider
from app.providers.capabilities import CapabilityTable
from app.resilience.drain import DrainFlag, InflightLimiter
from app.resilience.retry import BreakerRegistry, LoadShedder
from app.storage.recorder import Recorder


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
