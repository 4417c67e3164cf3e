"""A generation job from enqueue to stored image, against a bare pipeline call.

Same model, prompt, sampler (DDIM), steps (35), CFG (7), size and seed. Measured in one run:

* bare: ``StableDiffusionPipeline.__call__`` in this process (model already loaded, warmed up);
* cold job: the first ``generation.generate`` job of a fresh ``atelier_worker gpu`` process
  (loads the base model), timed from ``generation_request_create`` to the job row saying
  succeeded (PNG with metadata stored, rows written);
* warm jobs: the next jobs on the same worker (pipeline cache hit).

Aim: warm job / bare call <= 1.10.

    python bench/bench_generation_job.py [--model DIR] [--repeats 3] [--steps 35]

The model defaults to the shipped demo model (demo/model) and, while that is not
built, to a 64 px tiny model built from configs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="", help="diffusers folder (default: demo model)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=35)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="atelier-bench-gen-"))
    os.environ.update(
        ATELIER_ENV="test",
        ATELIER_VAR_DIR=str(tmp),
        MEDIA_ROOT=str(tmp / "media"),
        DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}",
        DJANGO_SETTINGS_MODULE="config.settings",
        ATELIER_LOG_LEVEL="WARNING",
    )
    if not os.environ.get("REDIS_URL"):
        from jobs.embedded_redis import EmbeddedRedis

        os.environ["REDIS_URL"] = EmbeddedRedis().start().url

    model = Path(args.model) if args.model else ROOT / "demo" / "model"
    label = "demo model"
    if not (model / "model_index.json").is_file():
        from demo.tiny import build_tiny_pipeline

        model = tmp / "tiny64"
        build_tiny_pipeline(model, sample_size=64)
        label = "tiny model (64 px; the demo model is not built)"

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from generation.diffusion import inference
    from generation.diffusion.pipeline import base_model_sha256
    from generation.models import BaseModel
    from generation.services import _demo_resolution, generation_request_create

    resolution = _demo_resolution(model)
    BaseModel.objects.create(
        name="bench",
        path=str(model),
        kind="diffusers",
        sha256=base_model_sha256(model),
        resolution=resolution,
        is_default=True,
    )
    prompt = "misty mountains above a winding river, ink landscape"
    settings = inference.RenderSettings(
        prompt=prompt, steps=args.steps, cfg=7.0, width=resolution, height=resolution
    )

    # The bare pipeline call runs in this process; jobs run in a real worker process. They
    # alternate (bare, job, bare, job...) so a busy machine slows both alike.
    base = inference.BaseSpec(str(model))
    pipe = inference.load_base_on_device(base)
    inference.render(pipe, settings, 0)  # warm-up

    def bare_seconds(seed: int) -> float:
        start = time.perf_counter()
        inference.render(pipe, settings, seed)
        return time.perf_counter() - start

    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "atelier_worker", "gpu"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(8)  # let the worker import Django and register (not part of any job)

        def job_seconds(seed: int) -> float:
            start = time.perf_counter()
            request = generation_request_create(
                prompt=prompt,
                steps=args.steps,
                cfg=7.0,
                width=resolution,
                height=resolution,
                seeds=[seed],
            )
            job = request.job
            while True:
                time.sleep(0.02)  # a light poll: this process must not steal the worker's CPU
                job.refresh_from_db(fields=["status", "error"])
                if job.status in ("succeeded", "failed", "cancelled"):
                    break
            elapsed = time.perf_counter() - start
            if job.status != "succeeded":
                raise SystemExit(f"job {job.status}: {job.error}")
            return elapsed

        cold = job_seconds(100)
        bare, warm = [], []
        for seed in range(1, args.repeats + 1):
            bare.append(bare_seconds(seed))
            warm.append(job_seconds(seed))
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    bare_s, warm_s = statistics.median(bare), statistics.median(warm)
    print(f"model: {label}, {resolution}x{resolution}, DDIM {args.steps} steps, CFG 7")
    print(f"bare pipeline call (median of {args.repeats}): {bare_s:.3f} s")
    print(f"warm job, enqueue to stored PNG (median of {args.repeats}): {warm_s:.3f} s")
    print(f"cold first job (worker loads the model): {cold:.3f} s")
    print(f"ratio warm job / bare call: {warm_s / bare_s:.3f} (aim <= 1.10)")
    print(f"ratio cold job / warm job: {cold / warm_s:.2f}")


if __name__ == "__main__":
    main()
