"""The demo experiment: Atlas LoRA vs the demo base model (see docs/demo-experiment.md)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Train a U-Net LoRA on the procedural Atlas set with the atlas-000 preset scaled to the "
        "CPU, generate base and LoRA images with identical seeds, and print the reproduction "
        "(MSE, PSNR, SSIM vs the training originals), held-out distribution (SWD, colour EMD) "
        "and held-out pixel figures with 95 % intervals over seeds."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", type=Path, default=None, help="working folder")
        parser.add_argument("--grid", type=Path, default=None, help="picture grid PNG to write")
        parser.add_argument("--epochs", type=int, default=None, help="default: the preset's 100")
        parser.add_argument(
            "--max-steps",
            type=int,
            default=None,
            help="optimizer steps, wins over --epochs (default 5200, the paper's); 0 = epochs",
        )
        parser.add_argument(
            "--noise-offset",
            type=float,
            default=None,
            help="offset noise of the LoRA training (default 0.3; 0 = plain noise)",
        )
        parser.add_argument(
            "--check-metrics",
            type=int,
            default=None,
            metavar="N",
            help="no training: score the base model, real Atlas silk and flat images against N "
            "held-out originals under four SSIM settings (what the metrics reward; ~1 min for 100)",
        )
        parser.add_argument(
            "--render-size",
            type=int,
            default=None,
            metavar="PX",
            help="with --check-metrics: draw the cloth at PX and resize it to 64 px, as the "
            "catalogue path does (default: drawn at 64 px)",
        )

    def handle(self, *args, out=None, grid=None, epochs=None, max_steps=None, **options):
        from demo.experiment import (
            DEFAULT_GRID,
            DemoExperiment,
            check_metrics,
            format_check_table,
            format_protocols,
            format_table,
            run_demo_experiment,
        )

        if options.get("check_metrics") is not None:
            n = options["check_metrics"]
            if n < 1:
                raise CommandError("--check-metrics needs at least 1 held-out original.")
            render = options.get("render_size")
            if render is not None and not 64 <= render <= 1024:
                raise CommandError("--render-size must be between 64 and 1024 pixels.")
            rows = check_metrics(
                n, base_model=Path(settings.ATELIER_DEMO_MODEL_DIR), render_size=render
            )
            drawn = f", drawn at {render} px and resized" if render else ""
            self.stdout.write(f"Mean scores against {n} held-out Atlas originals{drawn}:")
            self.stdout.write(format_check_table(rows))
            return

        changes = {}
        if epochs is not None:
            changes["epochs"] = epochs
        if max_steps is not None:
            changes["max_steps"] = max_steps or None
        if options.get("noise_offset") is not None:
            if not 0 <= options["noise_offset"] <= 1:
                raise CommandError("--noise-offset must be between 0 and 1.")
            changes["noise_offset"] = options["noise_offset"]
        exp = DemoExperiment(**changes)
        out_dir = Path(out or Path(settings.MEDIA_ROOT) / "demo-experiment")
        results = run_demo_experiment(
            out_dir,
            base_model=Path(settings.ATELIER_DEMO_MODEL_DIR),
            grid_path=grid or DEFAULT_GRID,
            exp=exp,
            progress=options.get("verbosity", 1) > 0,
        )
        self.stdout.write(format_protocols(results))
        self.stdout.write(
            "\nHeld-out pixel figures (each image vs one original; reported as they are):"
        )
        self.stdout.write(format_table(results))
        self.stdout.write(f"grid: {results['grid']}; details: {out_dir / 'results.json'}")
        if results["bars_met"]:
            self.stdout.write(
                self.style.SUCCESS(
                    "The LoRA beats the base on reproduction (MSE, PSNR, SSIM) and on the "
                    "held-out distribution (SWD) by a clear margin."
                )
            )
        else:
            self.stdout.write(self.style.WARNING("The experiment's bar is NOT met (see above)."))
