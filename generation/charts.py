"""Loss charts as SVG, drawn by matplotlib (pinned in requirements.txt) for the run and sweep
pages, their downloads and the run's bag. loss_chart_svg takes plain data; run_curve reads a
run's log. No torch.

matplotlib is used through ``matplotlib.figure.Figure`` (no pyplot), which keeps no global
state and is safe in a threaded web server.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

SMOOTHING = 0.9  # TensorBoard's default: exponential moving average weight of the past


@dataclass
class Curve:
    label: str
    points: Sequence[Sequence[float]]  # [[step, loss], ...]
    checkpoints: Sequence[int] = field(default_factory=list)  # steps with a checkpoint
    steps_per_epoch: float | None = None
    # [[step, loss], ...] at checkpoints: the held-out (validation split) loss, fixed noise
    held_out: Sequence[Sequence[float]] = field(default_factory=list)
    look_first: int | None = None  # the checkpoint step to look at first (lowest held-out)


def smooth(values: Sequence[float], weight: float = SMOOTHING) -> list[float]:
    """Debiased exponential moving average (as TensorBoard draws it): the first points are
    not pulled towards zero."""
    out, last, norm = [], 0.0, 0.0
    for value in values:
        last = last * weight + (1 - weight) * value
        norm = norm * weight + (1 - weight)
        out.append(last / norm)
    return out


def _svg(figure) -> str:
    from matplotlib import rc_context

    buffer = io.StringIO()
    # Text stays text (not glyph outlines): selectable, searchable, read by screen readers.
    # Same data, same bytes (a fixed id salt, no date): bags that carry the chart stay stable.
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "atelier"}):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # no XML prolog/doctype: the SVG can be inlined


def loss_chart_svg(curves: Sequence[Curve], *, title: str = "", width: float = 8.0) -> str:
    """Loss against optimizer step: raw points faint, the smoothed line over them, dashed
    verticals at checkpoints, epochs on a second axis along the top (one curve) and a legend
    (several curves, as a sweep overlays them)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(width, width * 0.45), dpi=100)
    axes = figure.add_subplot()
    colours = ["#8a2d1c", "#1a5fb4", "#1e6b32", "#b8860b", "#6a3d9a", "#555555", "#c2185b"]
    drawn = False
    for index, curve in enumerate(curves):
        pts = [(float(s), float(v)) for s, v in curve.points if v is not None]
        if not pts:
            continue
        drawn = True
        colour = colours[index % len(colours)]
        steps = [s for s, _ in pts]
        losses = [v for _, v in pts]
        axes.scatter(steps, losses, s=6, color=colour, alpha=0.25, linewidths=0)
        axes.plot(steps, smooth(losses), color=colour, linewidth=2, label=curve.label)
        for step in curve.checkpoints:
            axes.axvline(step, color=colour, linestyle="--", linewidth=0.8, alpha=0.6)
        held = [(float(s), float(v)) for s, v in curve.held_out if v is not None]
        if held:
            axes.plot(
                [s for s, _ in held],
                [v for _, v in held],
                color=colour,
                linestyle=":",
                marker="o",
                markersize=5,
                linewidth=1.5,
                label=f"{curve.label}: held-out loss" if len(curves) > 1 else "held-out loss",
            )
            if curve.look_first is not None:
                best = [v for s, v in held if s == curve.look_first]
                if best:
                    axes.plot(
                        [curve.look_first],
                        best,
                        marker="*",
                        markersize=14,
                        color=colour,
                        linestyle="none",
                        label="look at first (lowest held-out loss)",
                    )
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("training loss (MSE)")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    if title:
        axes.set_title(title, fontsize=11)
    if not drawn:
        axes.text(
            0.5, 0.5, "no loss recorded yet", ha="center", va="center", transform=axes.transAxes
        )
    single = [c for c in curves if c.points]
    if len(single) == 1 and single[0].steps_per_epoch:
        per = float(single[0].steps_per_epoch)
        top = axes.secondary_xaxis("top", functions=(lambda s: s / per, lambda e: e * per))
        top.set_xlabel("epoch")
        top.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(single) > 1 or any(c.held_out for c in curves):
        axes.legend(fontsize=8, loc="upper right", frameon=False)
    note = "faint dots: logged loss · line: smoothed (EMA 0.9)"
    if any(c.checkpoints for c in curves):
        note += " · dashed: checkpoints"
    figure.text(0.01, -0.02, note, fontsize=7, color="#555555")
    return _svg(figure)


def run_curve(run) -> Curve:
    """A training run's loss as the charts draw it: its stored log, or its job's live curve
    when that is further along (the log is written at checkpoints and at the end)."""
    from generation.selectors import loss_curve_points

    data = (run.job.data or {}) if run.job_id else {}
    points = loss_curve_points(run.loss_log) if run.loss_log else []
    live = data.get("loss_curve") or []
    if live and (not points or live[-1][0] > points[-1][0]):
        points = live
    per_epoch = None
    if data.get("total_steps") and data.get("total_epochs"):
        per_epoch = data["total_steps"] / data["total_epochs"]
    else:
        epochs = [p for p in run.loss_log or [] if isinstance(p, dict) and p.get("epoch")]
        if epochs:
            per_epoch = epochs[-1]["step"] / epochs[-1]["epoch"]
    from generation.selectors import checkpoint_to_look_at_first

    checkpoints = list(run.checkpoints.order_by("step").values_list("step", "validation_loss"))
    first = checkpoint_to_look_at_first(run)
    return Curve(
        label=run.name or f"run {run.pk}",
        points=points,
        checkpoints=[step for step, _ in checkpoints],
        steps_per_epoch=per_epoch,
        held_out=[[step, loss] for step, loss in checkpoints if loss is not None],
        look_first=first.step if first is not None else None,
    )


def run_loss_chart_svg(run) -> str:
    """The run page's chart, also written into the run's bag (runs/run-N/loss_chart.svg)."""
    curve = run_curve(run)
    return loss_chart_svg([curve], title=f"{curve.label} — {run.status}")
