"""What the apps above generation add to its work, registered from their AppConfig.ready().

Generation sits below evaluation and imports none of it (ARCHITECTURE.md); evaluation plugs in
here instead, as apps register file-access policies with ``archives.downloads``:

* ``register_approval_check(check)``: ``check(image, *, locked)`` raises ValidationError to
  refuse approving a generated image for the kiosk, or ApprovalCheckPending when a slow part
  must run first (in a job); called outside the transaction (``locked=False``, quick) and
  again under the image's row lock (``locked=True``);
* ``register_run_metrics(fn)``: ``fn(run, config) -> dict``, metrics of a finished training
  run's validation images, merged into ``TrainingRun.metrics``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ApprovalCheckPending(Exception):
    """Raised by an approval check whose slow part has not run yet for this image (the
    memorisation SSIMs): ``generated_image_approve`` then queues ``job_kind`` with the image
    and the user, which runs it and approves (or refuses) - never inside a request."""

    def __init__(self, job_kind: str) -> None:
        super().__init__(f"the approval waits for {job_kind}")
        self.job_kind = job_kind


class ApprovalQueued(Exception):
    """The approval was queued as ``job`` (202 in the API): poll it."""

    def __init__(self, job) -> None:
        super().__init__(f"Checking the image first: approval job {job.pk} is queued.")
        self.job = job


ApprovalCheck = Callable[..., None]
RunMetrics = Callable[[Any, Any], dict[str, Any]]
_approval_checks: list[ApprovalCheck] = []
_run_metrics: list[RunMetrics] = []


def register_approval_check(check: ApprovalCheck) -> ApprovalCheck:
    """Add a kiosk approval check (registering twice is harmless)."""
    if check not in _approval_checks:
        _approval_checks.append(check)
    return check


def approval_checks_run(image, *, locked: bool) -> None:
    """Every registered check; the first refusal (ValidationError) propagates."""
    for check in _approval_checks:
        check(image, locked=locked)


def register_run_metrics(fn: RunMetrics) -> RunMetrics:
    """Add a source of validation metrics for finished training runs."""
    if fn not in _run_metrics:
        _run_metrics.append(fn)
    return fn


def run_metrics_compute(run, config) -> dict[str, Any]:
    """The metrics every registered source computes for ``run`` (empty without one)."""
    metrics: dict[str, Any] = {}
    for fn in _run_metrics:
        metrics.update(fn(run, config))
    return metrics
