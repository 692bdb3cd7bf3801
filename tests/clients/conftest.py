"""The Java client's build, and the auth suite's gateways (API keys, fake engine) to run it against."""

from __future__ import annotations

from tests.auth.conftest import collections_dir, start_gateway
from tests.clients.java import java_classpath

__all__ = ["collections_dir", "java_classpath", "start_gateway"]
