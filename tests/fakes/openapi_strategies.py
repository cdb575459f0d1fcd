"""Hypothesis strategies from the gateway's OpenAPI description: valid bodies, and hostile variants of them.

A small JSON-Schema subset (what `python/fastroute/server/openapi.json` uses): type, enum, const, properties,
required, items, min/maxItems, minimum/maximum, minLength, anyOf, $ref to components.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from hypothesis import strategies as st


def load_openapi() -> dict[str, Any]:
    return dict(json.loads(resources.files("fastroute.server").joinpath("openapi.json").read_text()))


class SchemaStrategies:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.spec
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def valid(self, schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
        """Values the schema accepts (within small sizes)."""
        s = self.resolve(schema)
        if "const" in s:
            return st.just(s["const"])
        if "enum" in s:
            return st.sampled_from(s["enum"])
        if "anyOf" in s:
            return st.one_of([self.valid(x, depth + 1) for x in s["anyOf"]])
        kind = s.get("type", "object")
        if isinstance(kind, list):
            return st.one_of([self.valid({**s, "type": k}, depth) for k in kind])
        if kind == "object":
            props = s.get("properties", {})
            required = set(s.get("required", ()))
            return st.fixed_dictionaries(
                {k: self.valid(v, depth + 1) for k, v in props.items() if k in required},
                optional={k: self.valid(v, depth + 1) for k, v in props.items() if k not in required},
            )
        if kind == "array":
            return st.lists(
                self.valid(s.get("items", {"type": "string"}), depth + 1),
                min_size=s.get("minItems", 0),
                max_size=min(s.get("maxItems", 3), 3),
            )
        if kind == "string":
            return st.text(min_size=s.get("minLength", 0), max_size=40)
        if kind == "integer":
            return st.integers(s.get("minimum", -(2**31)), s.get("maximum", 2**31))
        if kind == "number":
            return st.floats(s.get("minimum", -1e6), s.get("maximum", 1e6), allow_nan=False)
        if kind == "boolean":
            return st.booleans()
        return st.none()


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)

# Numbers orjson cannot hold or that no parameter accepts, written as raw JSON text.
HUGE_NUMBERS = st.sampled_from(
    ["1e400", "-1e400", "123456789012345678901234567890", "-99999999999999999999", "1e-400", "0.0000000000001",
     "18446744073709551616", "-0", "9" * 400]
)
