"""Catalogue API under gunicorn: item list and item detail against a trivial Django JSON view.

    python bench/bench_catalogue_api.py [--seconds 8] [--concurrency 4] [--workers 2]

Builds a throw-away SQLite database (or uses --database-url), loads the demo catalogue,
starts gunicorn (sync workers, DEBUG off) and drives it with client processes, each on its
own connection per request. All endpoints are measured in the same run, alternating, so the
ratio holds even on a busy machine. Prints requests/s, p50 and p99 and the ratio to the
trivial view. Anonymous requests; "uncached" adds a unique query parameter so each request
misses the response cache and serializes the page from the database.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_application():
    """gunicorn factory: the site with bench/catalogue_bench_urls.py as the root URLconf."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.conf import settings

    django.setup()
    settings.ROOT_URLCONF = "bench.catalogue_bench_urls"
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Accept": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def client(port: int, path: str, seconds: float, unique: bool, seed: int, out) -> None:
    latencies, errors, n = [], 0, 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        target = path
        if unique:
            n += 1
            target = f"{path}{'&' if '?' in path else '?'}_={seed}-{n}"
        start = time.perf_counter()
        status, _ = fetch(port, target)
        latencies.append(time.perf_counter() - start)
        errors += status != 200
    out.put((latencies, errors))


def measure(port: int, path: str, seconds: float, concurrency: int, unique: bool = False) -> dict:
    queue: mp.Queue = mp.Queue()
    procs = [
        mp.Process(target=client, args=(port, path, seconds, unique, i, queue))
        for i in range(concurrency)
    ]
    start = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="atelier-bench-"))
    env = dict(os.environ)
    env.update(
        ATELIER_ENV="test",
        DJANGO_DEBUG="0",
        ATELIER_VAR_DIR=str(tmp),
        MEDIA_ROOT=str(tmp / "media"),
        DATABASE_URL=args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}",
        PYTHONPATH=str(ROOT),
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    subprocess.run(
        [*manage, "load_demo_catalogue", "--atlas", "24", "--landscapes", "16", "--size", "128"],
        env=env,
        check=True,
        cwd=ROOT,
    )
    port = free_port()
    gunicorn = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "bench.bench_catalogue_api:make_application()",
            "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
            "--worker-class", "sync", "--log-level", "warning",
        ],
        env=env,
        cwd=ROOT,
    )  # fmt: skip
    try:
        for _ in range(200):
            try:
                if fetch(port, "/bench/trivial")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        items = json.loads(fetch(port, f"/api/v1/items/?page_size={args.page_size}")[1])
        assert items["count"] >= args.page_size, items
        detail = f"/api/v1/items/{items['results'][0]['id']}/"
        endpoints = {
            "trivial JSON view": ("/bench/trivial", False),
            f"item list ({args.page_size}/page)": (
                f"/api/v1/items/?page_size={args.page_size}",
                False,
            ),
            "item detail": (detail, False),
            f"item list ({args.page_size}/page), uncached": (
                f"/api/v1/items/?page_size={args.page_size}",
                True,
            ),
            "item detail, uncached": (f"{detail}?x=1", True),
        }
        for path, unique in endpoints.values():  # warm up every worker
            measure(port, path, 1.0, args.concurrency, unique)
        totals: dict[str, list[dict]] = {name: [] for name in endpoints}
        for _ in range(args.rounds):
            for name, (path, unique) in endpoints.items():
                totals[name].append(measure(port, path, args.seconds, args.concurrency, unique))
    finally:
        gunicorn.terminate()
        gunicorn.wait(10)
    summary = {}
    for name, runs in totals.items():
        summary[name] = {
            "rps": statistics.mean(r["rps"] for r in runs),
            "p50_ms": statistics.mean(r["p50_ms"] for r in runs),
            "p99_ms": statistics.mean(r["p99_ms"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
            "requests": sum(r["requests"] for r in runs),
        }
    base = summary["trivial JSON view"]["rps"]
    print(
        f"gunicorn {args.workers} sync workers, {args.concurrency} client processes, "
        f"{args.rounds} rounds x {args.seconds:.0f} s, {os.cpu_count()} CPUs, "
        f"database {env['DATABASE_URL'].split(':')[0]}"
    )
    print("| endpoint | requests/s | p50 ms | p99 ms | vs trivial | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in summary.items():
        print(
            f"| {name} | {row['rps']:.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
            f"{100 * row['rps'] / base:.0f}% | {row['errors']} |"
        )


if __name__ == "__main__":
    main()
