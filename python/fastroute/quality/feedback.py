"""Parses a `POST /v1/feedback` body: `{request_id, score: 0..1 | "up" | "down", comment?}`.

Pure: must not import aiohttp. Every problem raises `InvalidRequest` naming the offending `param`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastroute.errors import InvalidRequest

THUMBS = {"up": 1.0, "down": 0.0, "thumbs_up": 1.0, "thumbs_down": 0.0, "+1": 1.0, "-1": 0.0}
MAX_COMMENT_CHARS = 4000
POSITIVE = 0.5  # a score at or above this counts as a positive outcome in rates
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True, slots=True)
class Feedback:
    request_id: str
    score: float
    comment: str | None = field(default=None, repr=False)  # may hold anything: kept out of logs and repr

    @property
    def positive(self) -> bool:
        return self.score >= POSITIVE


def parse_feedback(data: Any) -> Feedback:
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    rid = data.get("request_id")
    if not isinstance(rid, str) or not _REQUEST_ID.match(rid):
        raise InvalidRequest(
            "'request_id' is required: the x-request-id of the answer this feedback is about.", param="request_id"
        )
    raw = data.get("score", data.get("thumbs"))
    if raw is None:
        raise InvalidRequest('\'score\' is required: a number from 0 to 1, or "up" / "down".', param="score")
    if isinstance(raw, str):
        if raw.strip().lower() not in THUMBS:
            raise InvalidRequest('\'score\' must be a number from 0 to 1, or "up" / "down".', param="score")
        score = THUMBS[raw.strip().lower()]
    elif isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0.0 <= raw <= 1.0:
        raise InvalidRequest('\'score\' must be a number from 0 to 1, or "up" / "down".', param="score")
    else:
        score = float(raw)
    comment = data.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise InvalidRequest("'comment' must be a string.", param="comment")
    if comment is not None and len(comment) > MAX_COMMENT_CHARS:
        raise InvalidRequest(f"'comment' must be at most {MAX_COMMENT_CHARS} characters.", param="comment")
    return Feedback(request_id=rid, score=score, comment=comment or None)
