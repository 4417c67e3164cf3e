"""What evaluation asks before a generated image is approved for the kiosk.

Registered with ``generation.services.register_approval_check`` in ``EvaluationConfig.ready``:
generation sits below evaluation and does not import it. The check runs twice: first outside
the transaction (``locked=False``: the near-copy verdict; when it has not been computed, the
``evaluation.approval_check`` job computes it and approves), then
under the image's row lock (``locked=True``: only the open-study check, so a study opening at
that moment either sees the approval or is seen here).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from generation.hooks import ApprovalCheckPending


def kiosk_approval_check(image, *, locked: bool) -> None:
    """Refuse (ValidationError) approving an image rated blind in an open study or a near copy."""
    from evaluation.selectors import images_in_open_studies, near_copy_flags

    if image.pk in images_in_open_studies([image.pk]):
        raise ValidationError(
            "This image is being rated blind in an open expert study; approve it for the kiosk "
            "after the study closes.",
            code="in_open_study",
        )
    if locked:
        return
    flags = near_copy_flags([image.pk])[image.pk]
    if not flags["checked"]:
        # Decoding the training set takes long: the evaluation.approval_check job does it
        # (memorisation_check_images) and then approves.
        raise ApprovalCheckPending("evaluation.approval_check")
    if flags["near_copy"]:
        similarity = flags.get("similarity")
        closeness = f" (SSIM {similarity:.2f})" if similarity is not None else ""
        raise ValidationError(
            "This image is a near copy of a training image"
            f"{closeness}: it may reproduce a collection image, so it is not approved for the "
            "kiosk.",
            code="near_copy",
        )
