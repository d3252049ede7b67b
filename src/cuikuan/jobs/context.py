"""What a worker process keeps between tasks: settings, the database, its providers (an SMPP
bind lives as long as the process), the webhook client."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from cuikuan.channels.base import Channel, close_all
from cuikuan.services import webhooks
from cuikuan.settings import Settings, SettingsWatch

CONFIG_ENV = "CUIKUAN_CONFIG"


@dataclass
class Context:
    engine: Engine
    started_with: Settings
    providers: dict[str, Channel] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    post: webhooks.Post | None = None
    close_post: object = None
    # The worker's clock (the command line's), given by jobs.runner.run: the channels stamp
    # what their binds hear with it.
    clock: Callable[[], datetime] | None = None
    watch: SettingsWatch | None = None  # the settings file read again when it changes

    @property
    def settings(self) -> Settings:
        """The settings as the file says now: an approved policy governs the next task."""
        return self.watch.current() if self.watch is not None else self.started_with

    def resolve(self, name: str) -> Channel:
        from cuikuan.channels.registry import make_channel

        with self.lock:
            if name not in self.providers:
                if self.clock is None:
                    raise RuntimeError("the worker's clock is not set (jobs.runner.run sets it)")
                self.providers[name] = make_channel(name, self.engine, self.settings, self.clock)
            return self.providers[name]

    def poster(self) -> webhooks.Post:
        with self.lock:
            if self.post is None:
                self.post, self.close_post = webhooks.http_poster()
            return self.post

    def close(self) -> None:
        close_all(self.providers.values())
        if callable(self.close_post):
            self.close_post()


_current: dict[str, Context] = {}  # the process's one context, once made
_made = threading.Lock()


def context() -> Context:
    """This process's context, made on first use from the settings file in $CUIKUAN_CONFIG."""
    with _made:
        if "ctx" not in _current:
            from cuikuan.settings import find_settings_file, load_settings
            from cuikuan.store.engine import open_database

            path = os.environ.get(CONFIG_ENV)
            settings = load_settings(find_settings_file(Path(path) if path else None))
            _current["ctx"] = Context(
                open_database(settings.database_url), settings, watch=SettingsWatch(settings)
            )
        return _current["ctx"]


def close() -> None:
    with _made:
        found = _current.pop("ctx", None)
    if found is not None:
        found.close()
