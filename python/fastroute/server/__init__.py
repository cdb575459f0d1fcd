"""The HTTP server: aiohttp app factory, middlewares, handlers and the run loop."""
