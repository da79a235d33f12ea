"""The stream benchmark's plot, from the JSON document: throughput and latency against the offered rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import plotting
from .stream_results import MAX_P99_MS, MIN_SUSTAINED

TARGET_RATE = MIN_SUSTAINED
STYLES = {"prebuilt": "-", "kafka-python": "--"}  # one line per load generator when a run alternates them


def render(doc: dict[str, Any], out: Path) -> Path:
    plt = plotting.pyplot()
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    steps = doc["steps"]
    offered = [s["offered_per_s"] for s in steps]
    fig, (ax_rate, ax_lat) = plt.subplots(1, 2, figsize=(13, 5.6))

    top = max([*offered, *(s["landed_per_s"] for s in steps), TARGET_RATE], default=TARGET_RATE) * 1.1
    ax_rate.plot([0, top], [0, top], color="#a0aec0", linestyle=":", label="landed = offered")
    kinds = list(dict.fromkeys(s.get("producer") or "prebuilt" for s in steps))
    for kind in kinds:
        mine = [s for s in steps if (s.get("producer") or "prebuilt") == kind]
        suffix = f", {kind} producers" if len(kinds) > 1 else ""
        x, style = [s["offered_per_s"] for s in mine], STYLES.get(kind, "-")
        ax_rate.plot(x, [s["sent_per_s"] for s in mine], marker="s", color="#718096", linestyle=style,
                     label=f"sent (Kafka acks){suffix}")
        ax_rate.plot(x, [s["landed_per_s"] for s in mine], marker="o", color="#2b6cb0", linewidth=2,
                     linestyle=style, label=f"landed in Cassandra{suffix}")
    best = (doc.get("sustained") or {}).get("step")
    for s in steps:
        label = "ok" if s["sustained"] else ("did not keep up" if not s["kept_up"] else f"p99 > {MAX_P99_MS:g} ms")
        label = "SUSTAINED" if s["step"] == best else label
        ax_rate.annotate(f"{s['landed_per_s']:,.0f}\n{label}", (s["offered_per_s"], s["landed_per_s"]),
                         textcoords="offset points", xytext=(0, -28), ha="center", fontsize=8,
                         color="#2f855a" if s["sustained"] else "#c53030",
                         fontweight="bold" if s["step"] == best else "normal")
    ax_rate.axhline(TARGET_RATE, color="#2f855a", linestyle="--", linewidth=1, label=f"target {TARGET_RATE:,.0f} msg/s")
    naive = doc.get("naive")
    if naive:
        ax_rate.axhline(naive["msgs_per_s"], color="#c05621", linestyle="-.", linewidth=1,
                        label=f"naive baseline {naive['msgs_per_s']:,.0f} msg/s")
    ax_rate.set_xlim(0, top)
    ax_rate.set_ylim(0, top)
    ax_rate.set_xlabel("offered rate, both tenants (msg/s)")
    ax_rate.set_ylabel("msg/s")
    ax_rate.set_title("throughput end to end")
    ax_rate.grid(alpha=0.3)
    ax_rate.legend(loc="upper left", fontsize=8)

    for kind in kinds:
        suffix = f", {kind}" if len(kinds) > 1 else ""
        for key, color in (("p50_ms", "#90cdf4"), ("p95_ms", "#4299e1"), ("p99_ms", "#2a4365")):
            points = [(s["offered_per_s"], s[key]) for s in steps
                      if s[key] is not None and (s.get("producer") or "prebuilt") == kind]
            ax_lat.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=color,
                        linestyle=STYLES.get(kind, "-"), label=key[:3] + suffix)
    ax_lat.axhline(MAX_P99_MS, color="#c53030", linestyle="--", linewidth=1, label=f"p99 bound {MAX_P99_MS:g} ms")
    ax_lat.set_yscale("log")
    ax_lat.yaxis.set_major_formatter(ScalarFormatter())
    ax_lat.yaxis.set_minor_formatter(NullFormatter())
    low = min([MAX_P99_MS, *(s["p50_ms"] for s in steps if s["p50_ms"])]) / 2
    high = 2 * max([MAX_P99_MS, *(s["p99_ms"] or 0 for s in steps)])
    ax_lat.set_yticks([t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
                       if low <= t <= high])
    ax_lat.set_xlim(0, top)
    ax_lat.set_xlabel("offered rate, both tenants (msg/s)")
    ax_lat.set_ylabel("send to write (ms, log scale)")
    ax_lat.set_title("latency end to end")
    ax_lat.grid(alpha=0.3, which="both")
    ax_lat.legend(loc="upper left", fontsize=8)

    return plotting.save(fig, _title(doc), out)


def _title(doc: dict[str, Any]) -> str:
    best = doc.get("sustained")
    host = doc.get("host", {})
    rate = f"sustained {best['landed_per_s']:,.0f} msg/s (p99 {best['p99_ms']:,.0f} ms)" if best else \
        f"no step kept up with p99 <= {MAX_P99_MS:g} ms"
    ratio = doc.get("sustained_vs_naive")
    vs = f", {ratio:.1f}x the naive baseline" if ratio is not None else ""
    return f"mysimbdp stream benchmark, {doc.get('started_at', '')}, {host.get('cpus', '?')} CPUs: {rate}{vs}"
