"""The API's docs page, rendered on the server from the OpenAPI document: no script, nothing
fetched from elsewhere (Swagger UI and ReDoc load their code from a CDN by default)."""

from __future__ import annotations

import json
from typing import Any

from jinja2 import Environment

_ENV = Environment(autoescape=True)
_PAGE = _ENV.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ info.title }} API</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font:13px ui-monospace,monospace;background:#f4f4f4;padding:.1rem .3rem}
pre{padding:.6rem;overflow:auto} h2{border-bottom:1px solid #ddd;margin-top:2rem}
.op{margin:1rem 0 1.5rem} .m{display:inline-block;min-width:4.5rem;font-weight:600}
table{border-collapse:collapse} td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}
</style></head><body>
<h1>{{ info.title }} API {{ info.version }}</h1>
<p style="white-space:pre-line">{{ info.description }}</p>
<p>The machine-readable document: <a href="openapi.json">openapi.json</a>.</p>
{% for tag, ops in groups %}<h2>{{ tag }}</h2>
{% for op in ops %}<div class="op"><div><span class="m">{{ op.method }}</span> <code>{{ op.path }}</code>
 — {{ op.summary }}</div>
{% if op.params %}<table><tr><th>parameter</th><th>in</th><th>required</th><th>about</th></tr>
{% for p in op.params %}<tr><td><code>{{ p.name }}</code></td><td>{{ p["in"] }}</td>
<td>{{ "yes" if p.required else "" }}</td><td>{{ p.description or "" }}</td></tr>{% endfor %}</table>{% endif %}
{% if op.body %}<details><summary>request body</summary><pre>{{ op.body }}</pre></details>{% endif %}
</div>{% endfor %}{% endfor %}
</body></html>""")


def render(document: dict[str, Any]) -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, methods in document.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {})
            first: dict[str, Any] = next(iter(body.values()), {}) if body else {}
            schema = first.get("schema")
            groups.setdefault((op.get("tags") or ["other"])[0], []).append({
                "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                "params": op.get("parameters", []),
                "body": json.dumps(_resolve(schema, document), indent=1) if schema else "",
            })  # fmt: skip
    return _PAGE.render(info=document.get("info", {}), groups=list(groups.items()))


def _resolve(schema: Any, document: dict[str, Any], depth: int = 0) -> Any:
    if depth > 4:
        return schema
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found = document.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1])
            return _resolve(found, document, depth + 1)
        return {k: _resolve(v, document, depth + 1) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_resolve(v, document, depth + 1) for v in schema]
    return schema
