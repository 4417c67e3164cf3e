"""``manage.py verify_credentials FILE``: who made an image, from what, and does it still hold."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from generation import credentials


class Command(BaseCommand):
    help = (
        "Read an image's content credentials (C2PA): who made it, from what, and whether the "
        "signature and the hash still hold. Exit status 1 when they do not, 2 when there are none."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="An image file (PNG, JPEG, TIFF, WebP).")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        try:
            found = credentials.credentials_verify(data=data, filename=path.name)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.message_dict.get("file", exc.messages))) from exc
        report = found.report
        if options["json"]:
            self.stdout.write(json.dumps(found.as_dict(), indent=2, ensure_ascii=False))
        else:
            self.stdout.write(report.summary())
            if report.has_manifest:
                rows = [
                    ("signature", "valid" if report.signature_valid else "INVALID"),
                    ("hash", "matches" if report.hash_valid else "DOES NOT MATCH"),
                    ("certificate", "trusted" if report.trusted else "not on the trust list"),
                    ("signer", f"{report.signer} ({report.issuer})"),
                    ("producer", report.producer),
                    ("generator", report.claim_generator),
                    ("source type", report.digital_source_type),
                    ("content id", report.content_id),
                ]
                rows += [
                    (f"ingredient ({i['kind']})", f"{i['title']} sha256 {i['sha256']}")
                    for i in report.ingredients
                ]
                generation = report.generation
                if generation.get("dataset"):
                    ds = generation["dataset"]
                    rows.append(("dataset", f"{ds.get('id')} version {ds.get('version')}"))
                if (generation.get("prompt_source") or {}).get("passage_id"):
                    rows.append(("passage", str(generation["prompt_source"]["passage_id"])))
                rows += [(f"failure {f['code']}", f["explanation"]) for f in report.failures]
                if found.image is not None:
                    rows.append(("stored as", f"generated image {found.image.pk}"))
                for key, value in rows:
                    self.stdout.write(f"  {key}: {value}")
        if not report.has_manifest:
            raise SystemExit(2)
        if not report.intact:
            raise SystemExit(1)
