"""The request pipeline: per-request context and the stage interface subsystems plug into."""

from fastroute.pipeline.context import RequestContext, Tenant
from fastroute.pipeline.stage import Stage

__all__ = ["RequestContext", "Stage", "Tenant"]
