"""Routing: which tier and deployment chain answers a request, and why."""
