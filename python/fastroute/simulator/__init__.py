"""Simulated LLM upstreams (OpenAI- and Anthropic-shaped) for the demo, benchmarks and tests."""
