"""Metrics across worker processes: each worker publishes its counters to a file, a scrape adds them up.

With `FASTROUTE_WORKERS=N` the kernel hands each `/metrics` scrape to any one worker; without this, the
scrape would show that worker's counts only (a different share each time). Every worker writes its own
samples (counters, histograms, its in-flight gauge) to `<dir>/<pid>.json` about once a second and when it
stops; the worker that answers a scrape adds its live samples to the other workers' latest files. A worker
that died keeps its file, so totals never go backwards when it is replaced; its in-flight gauge no longer
counts. Gauges read from shared state (breakers, budgets) come from the answering worker alone.
Must not import aiohttp.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson
from prometheus_client.core import Metric

log = logging.getLogger("fastroute.observability")

# Families every worker reads from the same shared source (or the answering worker's probes): not summed.
SCRAPER_ONLY = frozenset({"fastroute_breaker_state", "fastroute_budget_remaining_usd", "fastroute_budget_limit_usd"})
# Gauges of a worker's own live state: summed over live workers only.
LIVE_GAUGES = frozenset({"fastroute_requests_in_flight", "fastroute_cache_entries", "fastroute_cache_bytes"})

Sample = tuple[str, dict[str, str], float]
Family = tuple[str, str, str, list[Sample]]  # name, type, documentation, samples


def to_families(metrics: Iterable[Metric]) -> list[Family]:
    return [(m.name, m.type, m.documentation, [(s.name, dict(s.labels), float(s.value)) for s in m.samples])
            for m in metrics if m.name not in SCRAPER_ONLY]  # fmt: skip


def merge(own: Iterable[Metric], others: Iterable[list[Family]]) -> Iterator[Metric]:
    """`own` families (this worker, live) with the same families' samples from other workers added in."""
    own = list(own)
    order: list[str] = []
    meta: dict[str, tuple[str, str]] = {}
    sums: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    passthrough: dict[str, Metric] = {}

    def add(name: str, kind: str, doc: str, samples: Iterable[Sample]) -> None:
        if name not in meta:
            meta[name] = (kind, doc)
            order.append(name)
            sums[name] = {}
        table = sums[name]
        for sample_name, labels, value in samples:
            key = (sample_name, tuple(sorted(labels.items())))
            table[key] = table.get(key, 0.0) + value

    for metric in own:
        if metric.name in SCRAPER_ONLY:
            passthrough[metric.name] = metric
            order.append(metric.name)
        else:
            add(metric.name, metric.type, metric.documentation,
                ((s.name, s.labels, s.value) for s in metric.samples))  # fmt: skip
    for families in others:
        for name, kind, doc, samples in families:
            if name not in SCRAPER_ONLY:
                add(name, kind, doc, samples)
    for name in order:
        if name in passthrough:
            yield passthrough[name]
            continue
        kind, doc = meta[name]
        metric = Metric(name, doc, kind)
        for (sample_name, labels), value in sums[name].items():
            metric.add_sample(sample_name, dict(labels), value)
        yield metric


class WorkerShare:
    """Publishes this worker's samples to `directory` and reads the other workers' latest ones."""

    def __init__(self, directory: Path, worker_id: str | None = None) -> None:
        self.directory = directory
        self.worker_id = worker_id or str(os.getpid())
        self._path = directory / f"{self.worker_id}.json"

    def publish(self, metrics: Iterable[Metric]) -> None:
        """Atomically replaces this worker's file (write aside, then rename)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(to_families(metrics)))
        tmp.replace(self._path)

    def others(self) -> Iterator[list[Family]]:
        """The other workers' latest samples (a dead worker's counters, but not its in-flight gauge)."""
        try:
            paths = sorted(self.directory.glob("*.json"))
        except OSError:
            return
        for path in paths:
            if path == self._path:
                continue
            try:
                families: list[Family] = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError) as e:
                log.warning("metrics of worker %s unreadable: %s", path.stem, e)
                continue
            if not _alive(path.stem):
                families = [f for f in families if f[0] not in LIVE_GAUGES]
            yield families


def _alive(worker_id: str) -> bool:
    try:
        os.kill(int(worker_id), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
