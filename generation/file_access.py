"""Who may download the generation app's files (registered with archives.downloads)."""

from __future__ import annotations

from django.db.models import Q

from archives.models import StoredFile
from generation import selectors
from generation.models import (
    GeneratedImage,
    GenerationRequest,
    TrainingCheckpoint,
    TrainingRun,
    ValidationImage,
)

EXPERT_GROUP = "expert"  # evaluation's group (named here: generation does not import it)


def _owned_here(stored: StoredFile) -> bool:
    return (
        TrainingRun.objects.filter(Q(lora_diffusers=stored) | Q(lora_kohya=stored)).exists()
        or TrainingCheckpoint.objects.filter(Q(archive=stored) | Q(lora=stored)).exists()
        or ValidationImage.objects.filter(file=stored).exists()
        or GenerationRequest.objects.filter(contact_sheet=stored).exists()
        or GeneratedImage.objects.filter(file=stored).exists()
    )


def stored_file_access(user, stored: StoredFile) -> bool | None:
    """Weights, checkpoints, validation images, contact sheets and generated images are the
    curators'. A generated image a curator approved for a published item is on the kiosk, so
    anyone may have it, except an expert: they rate images blind and get nothing of this app."""
    if selectors.user_is_curator(user):
        return _owned_here(stored) or None
    if getattr(user, "is_authenticated", False) and user.groups.filter(name=EXPERT_GROUP).exists():
        return None
    on_kiosk = GeneratedImage.objects.filter(
        file=stored, approved=True, item__published=True, item__collection__published=True
    ).exists()
    return on_kiosk or None
