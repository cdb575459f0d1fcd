"""Cache keys: request fingerprints, the exact key, and the conversation split into context + last user turn.

Pure: hashing and string slicing only. Everything that changes the answer must reach a key: the request's
parameters (model or tier, temperature, tools, JSON mode, ...) via `fingerprint_request`, the whole
conversation via the exact key, and for the semantic level every turn before the last user message via
the partition (it must match exactly; only the last user turn may be a paraphrase).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["exact_key", "fingerprint_request", "partition_key", "split_conversation"]

# Request fields that never change the answer's content (transport, accounting, streaming).
_NEUTRAL_FIELDS = frozenset({"messages", "stream", "stream_options", "user", "metadata", "store", "service_tier"})
_USER_MARK = "<user> "


def _digest(*parts: str) -> str:
    # Each part followed by 0x1f, hashed in one call (the same bytes as updating part by part).
    raw = "\x1f".join(parts).encode("utf-8", "surrogatepass") + b"\x1f"
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def fingerprint_request(body: Mapping[str, Any], *, model: str | None = None) -> str:
    """A stable hash of every answer-changing field of a chat request except the messages.

    Args:
        body: the OpenAI chat-completions request body.
        model: the model or tier that will answer, when it differs from `body["model"]` (e.g. `auto`
            routed to a tier); answers are never shared across models.
    """
    fields = {k: v for k, v in body.items() if k not in _NEUTRAL_FIELDS}
    if model is not None:
        fields["model"] = model
    try:
        raw = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        raw = repr(sorted(fields.items(), key=lambda kv: str(kv[0]))).encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def exact_key(tenant: str, fingerprint: str, normalized_text: str) -> str:
    """Key of the exact level: tenant, request fingerprint and the normalised whole conversation."""
    return _digest("x", tenant, fingerprint, normalized_text)


def split_conversation(text: str) -> tuple[str, str]:
    """(context, last user turn) of a `fastroute.prompt.conversation_text` string.

    Text without role markers (e.g. `cache-eval` prompts) is all last turn with an empty context. The
    split is at the last `<user> ` marker starting a line, so a marker inside the last message only makes
    the context longer (stricter), never shorter.
    """
    cut = text.rfind("\n" + _USER_MARK)
    if cut >= 0:
        return text[:cut], text[cut + 1 + len(_USER_MARK) :]
    if text.startswith(_USER_MARK):
        return "", text[len(_USER_MARK) :]
    return "", text


def partition_key(tenant: str, fingerprint: str, context: str) -> str:
    """Semantic neighbours are searched only among entries with the same tenant, parameters and context."""
    return _digest("p", tenant, fingerprint, " ".join(context.lower().split()))
