"""Groups and the demo logins that `manage.py atelier_run` creates on a fresh install."""

from __future__ import annotations

import secrets

from django.apps import apps
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

CURATOR_APPS = ("heritage", "generation", "evaluation")
# Bag import, export, validation and fixity checks: the archivist's work, not the curator's.
# Created here rather than in a model's Meta so that no migration is needed.
MANAGE_BAGS = "manage_bags"
MANAGE_BAGS_PERMISSION = f"archives.{MANAGE_BAGS}"
DEMO_LOGINS = (
    # username, groups, is_staff, is_superuser
    ("admin", (), True, True),
    ("curator", ("curator",), True, False),
    ("archivist", ("archivist",), False, False),
    ("expert", ("expert",), False, False),
)


def is_archivist(user) -> bool:
    """Holds ``archives.manage_bags`` (the archivist group) or is a superuser; staff is not enough.

    An import writes records in every app, so bag work is a role of its own, not a curator's.
    """
    return bool(
        user
        and user.is_authenticated
        and (user.is_superuser or user.has_perm(MANAGE_BAGS_PERMISSION))
    )


def manage_bags_permission_ensure() -> Permission:
    """The ``archives.manage_bags`` permission (import, export, validate bags; run fixity)."""
    # Looked up by name: core sits below archives and imports none of it.
    bag_export = apps.get_model("archives", "BagExport")
    permission, _ = Permission.objects.get_or_create(
        codename=MANAGE_BAGS,
        content_type=ContentType.objects.get_for_model(bag_export),
        defaults={"name": "Can import, export and validate bags and run fixity checks"},
    )
    return permission


def groups_ensure() -> dict[str, Group]:
    """The ``curator``, ``archivist`` and ``expert`` groups.

    Curators may edit the catalogue apps in the admin; archivists hold ``archives.manage_bags``
    and the archive records' view permissions; experts get no model permissions.
    """
    curator, _ = Group.objects.get_or_create(name="curator")
    archivist, _ = Group.objects.get_or_create(name="archivist")
    expert, _ = Group.objects.get_or_create(name="expert")
    archive_views = Permission.objects.filter(
        content_type__app_label__in=("archives", "jobs"), codename__startswith="view_"
    )
    curator.permissions.add(
        *Permission.objects.filter(content_type__app_label__in=CURATOR_APPS), *archive_views
    )
    archivist.permissions.add(manage_bags_permission_ensure(), *archive_views)
    return {"curator": curator, "archivist": archivist, "expert": expert}


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
