"""The readable table of a backtest."""

from __future__ import annotations

from autoscaler.backtest.run import Suite

__all__ = ["format_table"]


def _head(width: int) -> str:
    return (
        f"{'trace':<40} {'policy':<{width}} {'viol%':>7} {'unserved%':>9} {'cost/oracle':>11} "
        f"{'actions':>8}"
    )


def format_table(suite: Suite) -> str:
    """Per-trace figures, the aggregates (means; geometric mean of cost), then foresight's
    verdicts against the competitors (see :mod:`autoscaler.backtest.verdict`)."""
    width = max([10, *(len(name) for name in suite.aggregates)])
    head = _head(width)
    lines = [head, "-" * len(head)]
    for r in suite.results:
        for name, s in r.scores.items():
            lines.append(
                f"{r.world.name[:40]:<40} {name:<{width}} {s.violation_pct:>7.3f} "
                f"{s.unserved_pct:>9.3f} {s.cost_vs_oracle:>11.3f} {s.actions:>8d}"
            )
    lines.append("")
    lines.append(f"aggregate over {len(suite.results)} trace(s)")
    lines.append(head.replace("trace", "     "))
    lines.append("-" * len(head))
    for name, a in suite.aggregates.items():
        lines.append(
            f"{'':<40} {name:<{width}} {a.violation_pct:>7.3f} {a.unserved_pct:>9.3f} "
            f"{a.cost_vs_oracle:>11.3f} {a.actions:>8.0f}"
        )
    judged = suite.verdicts()
    if judged:
        lines.append("")
        named = ", ".join(judged[0].competitors)
        lines.append(f"against each competitor's best setting ({named}):")
        lines.extend(v.line() for v in judged)
    return "\n".join(lines) + "\n"
