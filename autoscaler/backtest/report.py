"""The readable table of a backtest."""

from __future__ import annotations

from autoscaler.backtest.run import Suite

__all__ = ["format_table"]

_HEAD = (
    f"{'trace':<40} {'policy':<10} {'viol%':>7} {'unserved%':>9} {'cost/oracle':>11} {'actions':>8}"
)


def format_table(suite: Suite) -> str:
    """Per-trace figures, then the aggregates (means; geometric mean of cost)."""
    lines = [_HEAD, "-" * len(_HEAD)]
    for r in suite.results:
        for name, s in r.scores.items():
            lines.append(
                f"{r.world.name[:40]:<40} {name:<10} {s.violation_pct:>7.3f} "
                f"{s.unserved_pct:>9.3f} {s.cost_vs_oracle:>11.3f} {s.actions:>8d}"
            )
    lines.append("")
    lines.append(f"aggregate over {len(suite.results)} trace(s)")
    lines.append(_HEAD.replace("trace", "     "))
    lines.append("-" * len(_HEAD))
    for name, a in suite.aggregates.items():
        lines.append(
            f"{'':<40} {name:<10} {a.violation_pct:>7.3f} {a.unserved_pct:>9.3f} "
            f"{a.cost_vs_oracle:>11.3f} {a.actions:>8.0f}"
        )
    return "\n".join(lines) + "\n"
