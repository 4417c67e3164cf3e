"""Who may download the catalogue's files (registered with archives.downloads in apps.py)."""

from __future__ import annotations

from django.db.models import Q

from archives.models import StoredFile
from heritage.models import ItemImage, TrainingExample
from heritage.selectors import user_is_curator

# Rights statements under which anyone may have the original: Creative Commons licences and
# public-domain tools, and rightsstatements.org's "No Copyright" statements. In Copyright,
# Undetermined, no statement at all: the original stays with curators.
OPEN_RIGHTS = (
    "creativecommons.org/licenses/",
    "creativecommons.org/publicdomain/",
    "rightsstatements.org/vocab/NoC-",
)


def rights_allow_original(rights: str) -> bool:
    address = rights.split("://", 1)[-1].removeprefix("www.")
    return bool(rights) and address.startswith(OPEN_RIGHTS)


def stored_file_access(user, stored: StoredFile) -> bool | None:
    """Derivatives of published images to anyone, their originals where the rights allow;
    unpublished images and training crops to curators."""
    images = ItemImage.objects.select_related("item__collection").filter(
        Q(original=stored) | Q(thumbnail=stored) | Q(display=stored)
    )
    for image in images:
        if user_is_curator(user):
            return True
        if not image.published:
            continue
        if stored.pk in (image.thumbnail_id, image.display_id):
            return True
        if rights_allow_original(image.item.rights):
            return True
    if TrainingExample.objects.filter(crop=stored).exists() and user_is_curator(user):
        return True
    return None
