"""``manage.py c2pa_dev_certificate``: a local development chain for signing generated images."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from generation import credentials


class Command(BaseCommand):
    help = (
        "Make a development C2PA certificate chain (root CA + signing certificate + key) for "
        "the embedded default. Trusted by nobody else: production uses the museum's own "
        "certificate (ATELIER_C2PA_CERT / ATELIER_C2PA_KEY, docs/content-credentials.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dir", default="", help=f"Folder (default {settings.ATELIER_C2PA_DEV_DIR})."
        )
        parser.add_argument(
            "--replace", action="store_true", help="Make a new chain even if one is there."
        )

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError(
                "Not in production: install the museum's certificate and key instead "
                "(ATELIER_C2PA_CERT, ATELIER_C2PA_KEY; docs/content-credentials.md)."
            )
        folder = Path(options["dir"] or settings.ATELIER_C2PA_DEV_DIR)
        existed = all((folder / name).is_file() for name in credentials.DEV_FILES)
        credentials.dev_certificate_create(folder=folder, replace=options["replace"])
        verb = "Kept the" if existed and not options["replace"] else "Made a"
        self.stdout.write(
            f"{verb} development certificate chain in {folder}: root.pem (root CA), "
            "cert.pem (signing certificate), key.pem (its private key).\n"
            "It is NOT trusted: only this installation's verification page trusts its root. "
            "Content Credentials verifiers elsewhere report the signer as unknown.\n"
            "A museum installs its own: ATELIER_C2PA_CERT=chain.pem ATELIER_C2PA_KEY=key.pem "
            "(docs/content-credentials.md)."
        )
