"""`fastroute serve` and `fastroute demo`: build settings, start the gateway, print where it listens."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from pathlib import Path

from fastroute.catalogue import Catalogue
from fastroute.env_values import SettingsError
from fastroute.server.app import create_app
from fastroute.server.run import bind_socket, run, serve_until_stopped
from fastroute.settings import Settings

SECRET_SUFFIXES = ("_API_KEY", "_KEY", "_TOKEN", "_SECRET")


def secrets_from(env: Mapping[str, str]) -> dict[str, str]:
    """Provider keys are read from variables named by `api_key_env`; only secret-looking names are kept."""
    return {k: v for k, v in env.items() if k.endswith(SECRET_SUFFIXES) and not k.startswith("FASTROUTE_")}


def _settings(env: Mapping[str, str], overrides: Mapping[str, str]) -> Settings | None:
    try:
        return Settings.from_env({**env, **overrides})
    except SettingsError as e:
        print(f"fastroute: configuration error: {e}", file=sys.stderr)
        return None


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")


def serve_main(argv: list[str], env: Mapping[str, str]) -> int:
    parser = argparse.ArgumentParser(prog="fastroute serve", description="Run the gateway.")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    overrides = {k: str(v) for k, v in (("FASTROUTE_HOST", args.host), ("FASTROUTE_PORT", args.port)) if v}
    settings = _settings(env, overrides)
    if settings is None:
        return 2
    _logging(settings.server.log_level)
    if settings.server.workers > 1:
        from fastroute.server.workers import serve_workers

        return serve_workers(settings, secrets_from(env))
    try:
        app = create_app(settings, secrets=secrets_from(env))
    except SettingsError as e:
        print(f"fastroute: configuration error: {e}", file=sys.stderr)
        return 2
    sock = bind_socket(settings.server.host, settings.server.port)

    async def main() -> None:
        await serve_until_stopped(
            app, sock, shutdown_grace_s=settings.server.shutdown_grace_s,
            on_ready=lambda url: print(f"fastroute listening on {url}", flush=True),
            access_log=settings.server.access_log,
        )

    run(main)
    return 0


DEMO_BANNER = """
fastroute demo is running at {url}  (simulated upstreams at {sim}; no API key needed)

  dashboard:  {url}/dashboard
  metrics:    {url}/metrics
  models:     {url}/v1/models
  policy:     {policy}   (edit it: changes apply within a second)

Try it:

  curl -s {url}/v1/chat/completions -i -H 'Content-Type: application/json' \\
    -H 'x-fastroute-app: support-bot' -d '{{"model": "auto", "messages": [{{"role": "user",
    "content": "Mail me at jane@example.com: what is the capital of France?"}}]}}'
  (support-bot's policy redacts the e-mail before it leaves and downgrades requests whose worst case is too dear)

  python - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="{url}/v1", api_key="demo")
r = client.chat.completions.with_raw_response.create(
    model="auto", messages=[{{"role": "user", "content": "Prove that sqrt(2) is irrational."}}])
print(r.headers["x-fastroute-tier"], r.headers["x-fastroute-model"], r.headers["x-fastroute-cost-usd"])
print(r.parse().choices[0].message.content)
PY

Press Ctrl+C to stop.
"""


def demo_main(argv: list[str], env: Mapping[str, str]) -> int:
    from fastroute.simulator.demo import demo_catalogue, start_simulator

    parser = argparse.ArgumentParser(prog="fastroute demo", description="Run the gateway on simulated upstreams.")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    overrides = {k: str(v) for k, v in (("FASTROUTE_HOST", args.host), ("FASTROUTE_PORT", args.port)) if v}
    if not env.get("FASTROUTE_QUALITY_TARGET") and not env.get("FASTROUTE_FRONTIER_SHARE"):
        # The demo shows all three tiers at work: at most a fifth of the live traffic goes to frontier.
        overrides["FASTROUTE_FRONTIER_SHARE"] = "0.2"
    if not env.get("FASTROUTE_POLICY"):
        # A demo policy (departments, apps, small budgets, PII rules) the user can edit live.
        from fastroute.governance.demo import write_demo_policy

        overrides["FASTROUTE_POLICY"] = str(write_demo_policy(Path(env.get("FASTROUTE_DATA_DIR") or ".fastroute")))
    settings = _settings(env, overrides)
    if settings is None:
        return 2
    _logging(settings.server.log_level)
    sock = bind_socket(settings.server.host, settings.server.port)

    async def main() -> None:
        sim_runner, sim_url = await start_simulator(settings.server.host)
        catalogue: Catalogue = demo_catalogue(sim_url)
        app = create_app(settings, catalogue=catalogue)
        try:
            await serve_until_stopped(
                app, sock, shutdown_grace_s=settings.server.shutdown_grace_s,
                on_ready=lambda url: print(
                    DEMO_BANNER.format(url=url, sim=sim_url, policy=settings.policy_path), flush=True
                ),
            )
        finally:
            await sim_runner.cleanup()

    run(main)
    return 0
