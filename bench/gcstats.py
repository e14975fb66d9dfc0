"""Collector pauses of a running freescore, read from its /metrics (`freescore_gc_pause_seconds`)."""

from __future__ import annotations

import urllib.request

Snapshot = dict[str, dict[str, float]]  # generation -> {"count", "sum", "le=<bound>" ...}


def snapshot(base_url: str) -> Snapshot:
    """The pause histogram now, per generation."""
    text = urllib.request.urlopen(base_url.rstrip("/") + "/metrics", timeout=10).read().decode()
    out: Snapshot = {}
    for line in text.splitlines():
        if not line.startswith("freescore_gc_pause_seconds_"):
            continue
        name, value = line.rsplit(" ", 1)
        kind = name.split("{", 1)[0].rsplit("_", 1)[1]
        if kind not in ("count", "sum", "bucket"):
            continue
        labels = dict(part.split("=", 1) for part in name.split("{", 1)[1].rstrip("}").split(","))
        gen = labels["generation"].strip('"')
        key = kind if kind in ("count", "sum") else "le=" + labels["le"].strip('"')
        out.setdefault(gen, {})[key] = float(value)
    return out


def describe(before: Snapshot, after: Snapshot) -> str:
    """'gen0: 12 passes, longest <= 5 ms; ...' for the passes between two snapshots."""
    parts = []
    for gen in sorted(after):
        count = after[gen].get("count", 0) - before.get(gen, {}).get("count", 0)
        if count <= 0:
            parts.append(f"gen{gen}: 0 passes")
            continue
        total = after[gen]["sum"] - before.get(gen, {}).get("sum", 0)
        bounds = sorted((float(k[3:]), k) for k in after[gen] if k.startswith("le="))
        longest = next((b for b, k in bounds if after[gen][k] - before.get(gen, {}).get(k, 0) >= count), None)
        bound = "> 1 s" if longest is None or longest == float("inf") else f"<= {longest * 1000:g} ms"
        parts.append(f"gen{gen}: {count:.0f} passes, {total * 1000:.0f} ms in all, longest {bound}")
    return "; ".join(parts) if parts else "no collector metrics"
