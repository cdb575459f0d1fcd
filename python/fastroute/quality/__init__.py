"""The quality loop: feedback, shadow evaluation, per-tier quality and auto-recalibration of routing.

Wiring (composition root)::

    quality = QualityStage(QualitySettings.from_env(env), catalogue, settings.data_dir)
    stages.append(quality)               # after observers, before governance and the cache
    quality.bind(app[GATEWAY])           # providers + timeouts for shadow calls
    install(app, quality, settings.admin_token, tenants)   # /v1/feedback, /admin/quality[/reset]

Other subsystems use `tier_quality(stage)` (rows with Wilson intervals, for panels and metrics) and
`export_labels(data_dir, dest)` (shadow labels as routing-schema JSONL, for `fastroute train --from-ledger`).
"""

from fastroute.quality.labels import export_labels, labels_path, read_labels
from fastroute.quality.report import quality_report, tier_quality
from fastroute.quality.settings import QualitySettings
from fastroute.quality.stage import QualityStage

__all__ = [
    "QualitySettings",
    "QualityStage",
    "export_labels",
    "labels_path",
    "quality_report",
    "read_labels",
    "tier_quality",
]
