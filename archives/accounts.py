"""Groups and the demo logins that `manage.py atelier_run` creates on a fresh install."""

from __future__ import annotations

import secrets

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction

CURATOR_APPS = ("heritage", "generation", "evaluation")
DEMO_LOGINS = (
    # username, groups, is_staff, is_superuser
    ("admin", (), True, True),
    ("curator", ("curator",), True, False),
    ("expert", ("expert",), False, False),
)


def groups_ensure() -> dict[str, Group]:
    """The ``curator`` and ``expert`` groups; curators may edit the catalogue apps in the admin."""
    curator, _ = Group.objects.get_or_create(name="curator")
    expert, _ = Group.objects.get_or_create(name="expert")
    curator.permissions.add(
        *Permission.objects.filter(content_type__app_label__in=CURATOR_APPS),
        *Permission.objects.filter(
            content_type__app_label="archives", codename__startswith="view_"
        ),
    )
    return {"curator": curator, "expert": expert}


@transaction.atomic
def demo_logins_create(*, reset: bool = False) -> dict[str, str]:
    """Create the demo logins that don't exist yet; return ``{username: password}`` for those.

    Passwords are random and kept only as Django's hash: the caller prints them once. With
    ``reset`` the existing demo logins get new passwords too.
    """
    groups = groups_ensure()
    created: dict[str, str] = {}
    for username, group_names, is_staff, is_superuser in DEMO_LOGINS:
        user = User.objects.filter(username=username).first()
        if user is not None and not reset:
            continue
        password = secrets.token_urlsafe(12)
        if user is None:
            user = User(username=username)
        user.is_staff, user.is_superuser, user.is_active = is_staff, is_superuser, True
        user.set_password(password)
        user.full_clean()
        user.save()
        user.groups.add(*(groups[name] for name in group_names))
        created[username] = password
    return created
