"""Train the offline demo base model (see demo/model_recipe.py)."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Train the small Stable-Diffusion-format demo base model on the generic procedural set "
        "(fixed seed, CPU, about 55 minutes on one thread) and write it to ATELIER_DEMO_MODEL_DIR."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--out",
            type=Path,
            default=None,
            help="folder to write (default: settings.ATELIER_DEMO_MODEL_DIR)",
        )

    def handle(self, *args, out: Path | None = None, **options):
        from demo.model_recipe import train_demo_model

        out_dir = Path(out or settings.ATELIER_DEMO_MODEL_DIR)
        info = train_demo_model(out_dir, progress=options.get("verbosity", 1) > 0)
        self.stdout.write(json.dumps(info, indent=2))
        self.stdout.write(self.style.SUCCESS(f"Demo model written to {out_dir}"))
