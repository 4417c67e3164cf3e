"""Who may download blind copies (registered with archives.downloads in apps.py)."""

from __future__ import annotations

from archives.models import StoredFile
from evaluation.models import Assignment, StudyItem
from evaluation.selectors import user_is_curator


def stored_file_access(user, stored: StoredFile) -> bool | None:
    """A blind copy goes to the experts it is assigned to, and to curators; nobody else."""
    if not getattr(user, "is_authenticated", False):
        return None
    if Assignment.objects.filter(item__blind=stored, expert=user).exists():
        return True
    if user_is_curator(user) and StudyItem.objects.filter(blind=stored).exists():
        return True
    return None


BLIND_NAME = "image.png"  # the same for every blind copy: nothing of condition, run or order


def download_name(stored: StoredFile) -> str | None:
    return BLIND_NAME if StudyItem.objects.filter(blind=stored).exists() else None
