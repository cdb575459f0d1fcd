"""fastroute: an LLM routing gateway."""
