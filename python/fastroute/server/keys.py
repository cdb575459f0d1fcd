"""Typed `web.AppKey`s for everything the app holds (aiohttp's answer to globals)."""

from __future__ import annotations

from aiohttp import web

from fastroute.gateway import Gateway
from fastroute.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
GATEWAY = web.AppKey("gateway", Gateway)
