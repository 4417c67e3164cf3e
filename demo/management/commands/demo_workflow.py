"""``manage.py demo_workflow``: the demo experiment through the apps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from demo.workflow import (
    EXECUTORS,
    WorkflowError,
    WorkflowOptions,
    format_metrics_table,
    format_references,
    run_demo_workflow,
)


class Command(BaseCommand):
    help = (
        "Demo catalogue -> frozen Atlas dataset -> LoRA training run -> base vs LoRA images for "
        "the held-out captions (same seeds) -> evaluation study with MSE/PSNR/SSIM; prints the "
        "table and where to see each step in the UI."
    )

    def add_arguments(self, parser):
        parser.add_argument("--atlas", type=int, default=28, help="Atlas demo images (28)")
        parser.add_argument("--landscapes", type=int, default=6, help="ink landscapes (6)")
        parser.add_argument(
            "--image-size", type=int, default=384, help="catalogue image size (384)"
        )
        parser.add_argument(
            "--epochs",
            type=int,
            help="train this many epochs instead of the demo experiment's fixed step count",
        )
        parser.add_argument(
            "--max-steps", type=int, help="override the demo experiment's optimizer steps"
        )
        parser.add_argument(
            "--training-json",
            default="{}",
            help="more training-setting overrides as JSON, e.g. '{\"rank\": 8}'",
        )
        parser.add_argument(
            "--max-prompts", type=int, help="use only the first N held-out captions"
        )
        parser.add_argument("--steps", type=int, help="DDIM steps (demo experiment: 35)")
        parser.add_argument("--cfg", type=float, help="CFG scale (demo experiment: 7)")
        parser.add_argument("--seeds", type=int, nargs="+", help="seeds (demo experiment: 0 1)")
        parser.add_argument(
            "--worker",
            action="store_true",
            help="start an `atelier_worker default gpu` process for the jobs (stopped at the end)",
        )
        parser.add_argument(
            "--jobs",
            choices=EXECUTORS,
            default="auto",
            help="auto: a listening worker runs each job, else this process does; worker: "
            "always wait for a worker; inline: run every job in this process",
        )
        parser.add_argument("--json", type=Path, help="also write the results as JSON here")
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="site address for the links"
        )

    def handle(self, *args, **options):
        if options["worker"] and options["jobs"] == "inline":
            raise CommandError("--worker and --jobs inline exclude each other")
        try:
            training = dict(json.loads(options["training_json"]))
        except (ValueError, TypeError) as exc:
            raise CommandError(f"--training-json: {exc}") from exc
        if options["epochs"] is not None:
            # max_steps wins over epochs, so an explicit epoch count clears the demo's steps.
            training.update(
                epochs=options["epochs"], checkpoint_every_epochs=options["epochs"], max_steps=None
            )
        if options["max_steps"] is not None:
            training.update(max_steps=options["max_steps"])
        opts = WorkflowOptions(
            atlas=options["atlas"],
            landscapes=options["landscapes"],
            image_size=options["image_size"],
            max_prompts=options["max_prompts"],
            training=training,
            seeds=options["seeds"],
            steps=options["steps"],
            cfg=options["cfg"],
            executor="worker" if options["worker"] else options["jobs"],
        )
        worker = self._start_worker() if options["worker"] else None
        try:
            result = run_demo_workflow(opts, say=lambda line: self.stdout.write(line))
        except WorkflowError as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:  # a refused setting: the services' own message
            raise CommandError("; ".join(exc.messages)) from exc
        finally:
            if worker is not None:
                worker.terminate()
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
        base = options["base_url"].rstrip("/")
        urls = result["urls"]
        out = self.stdout.write
        out("")
        out(
            f"MSE / PSNR / SSIM against the held-out originals ({len(result['prompts'])} "
            f"captions x seeds {result['seeds']}, DDIM {result['steps']}, CFG {result['cfg']}; "
            "mean ± SD over image/original pairs):"
        )
        out(format_metrics_table(result["table"] + result["references"]))
        out("")
        out(format_references(result))
        if result["lora_wins"] is not None:
            wins = [m.upper() for m, won in result["lora_wins"].items() if won]
            out(f"LoRA better than base on: {', '.join(wins) or 'none'} (of MSE, PSNR, SSIM)")
        out("")
        out("See it in the app, logged in as the curator (user `curator`):")
        out(f"  curator home (every task, running jobs):     {base}{urls['home']}")
        out(f"  training run, loss curve, validation images: {base}{urls['run']}")
        for url in urls["requests"]:
            out(f"  base | LoRA pairs and contact sheet:          {base}{url}")
        out(f"  study report (metrics table, CSV/JSON):      {base}{urls['report']}")
        out(f"  kiosk approvals (after the study closes):    {base}{urls['approvals']}")
        out("and as the expert (user `expert`, on the study's panel):")
        out(f"  evaluation study:                            {base}{urls['study']}")
        out(f"Done in {result['seconds']:.0f} s.")
        if options["json"]:
            options["json"].write_text(json.dumps(result, indent=2, default=str) + "\n")

    def _start_worker(self) -> subprocess.Popen:
        manage = Path(settings.BASE_DIR) / "manage.py"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.setdefault("OMP_NUM_THREADS", "1")  # one heavy process on a small machine
        log = Path(settings.VAR_DIR) / "demo-workflow-worker.log"
        self.stdout.write(f"starting a worker: atelier_worker default gpu (log: {log})")
        with open(log, "ab") as handle:
            return subprocess.Popen(
                [sys.executable, str(manage), "atelier_worker", "default", "gpu"],
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
