"""Run the whole service on one machine: what `./atelier run` calls.

Migrates, creates the demo logins (passwords printed once), collects static files, starts a
private Redis when REDIS_URL is not set, one worker per queue, a reconciler and the web server
(gunicorn; whitenoise serves static files), waits until /healthz reports the database, Redis
and a live worker on every queue, prints the URLs, and on Ctrl-C or SIGTERM stops everything.

Why not honcho's ``Manager`` (checked for issue 19; honcho 2.0.0): its ``loop()`` blocks until
every process has ended, and ends them all as soon as any one exits; it stops them all at once
and kills what is left after 5 s. This command needs what that cannot give without
re-implementing it around the Manager: a worker or the reconciler that dies is started again
(only the web server's exit stops everything); shutdown goes in order (web first, so no new
work arrives, then the workers, which get 15 s to finish the job in hand, then the private
Redis they still need until then); and the URLs are printed once /healthz reports every queue
served, which happens while the processes run. So it stays a short Popen loop.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError

from jobs.queue import QUEUES


class _Stop(Exception):
    """Raised by the signal handler to leave the supervision loop."""


class Command(BaseCommand):
    help = "Run Atelier: migrations, demo logins, Redis, workers and the web server."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("ATELIER_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--server",
            choices=("gunicorn", "runserver"),
            default="gunicorn",
            help="gunicorn (default) or Django's runserver --noreload.",
        )
        parser.add_argument("--web-processes", type=int, default=2)
        parser.add_argument("--no-demo-data", action="store_true", help="Skip the demo catalogue.")
        parser.add_argument(
            "--reset-demo-passwords",
            action="store_true",
            help="Give the demo logins new passwords (printed once).",
        )
        parser.add_argument("--health-timeout", type=float, default=180)
        parser.add_argument(
            "--exit-when-ready",
            action="store_true",
            help="Stop everything once healthy (a smoke test of the whole stack).",
        )

    # --- set-up -----------------------------------------------------------------------------

    def handle(self, *args, **options):
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.redis = None
        self.options = options
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self._start()
            if not options["exit_when_ready"]:
                self._supervise()
        except _Stop:
            self.stdout.write("\nstopping Atelier ...")
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("Atelier stopped.")

    def _on_signal(self, signum, frame):
        raise _Stop()

    def _say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def _start(self) -> None:
        host, port = self.options["host"], self.options["port"]
        if not _port_free(host, port):
            raise CommandError(f"port {port} on {host} is in use: pass --port to pick another")
        self._say("applying migrations ...")
        call_command("migrate", interactive=False, verbosity=0)
        self._demo_logins()
        self._say("collecting static files ...")
        call_command("collectstatic", interactive=False, verbosity=0)

        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"]
            from jobs.embedded_redis import redis_answers

            if not redis_answers(env["REDIS_URL"], timeout=3):
                raise CommandError(f"REDIS_URL={env['REDIS_URL']} does not answer")
        else:
            from jobs.embedded_redis import EmbeddedRedis

            self.redis = EmbeddedRedis().start()
            env["REDIS_URL"] = self.redis.url
            self._say(f"started a private Redis at {self.redis.url}")
        self.env = env

        for queue in QUEUES:
            self._spawn(f"worker {queue}", [*_manage(), "atelier_worker", queue])
        self._spawn("reconciler", [*_manage(), "reconcile_jobs", "--every", "60"])
        self._spawn("web", self._web_command(host, port))

        if not self.options["no_demo_data"] and "load_demo_catalogue" in get_commands():
            self._say("loading the demo catalogue ...")
            loader = subprocess.run([*_manage(), "load_demo_catalogue"], env=env, check=False)
            if loader.returncode != 0:
                self._say(f"warning: load_demo_catalogue exited with {loader.returncode}")

        report = self._wait_healthy(host, port)
        self._print_urls(host, port, report)

    def _demo_logins(self) -> None:
        if settings.PRODUCTION:
            from core.roles import groups_ensure

            groups_ensure()
            self._say("production: no demo logins (use `manage.py createsuperuser`)")
            return
        from core.roles import demo_logins_create

        created = demo_logins_create(reset=self.options["reset_demo_passwords"])
        if created:
            self._say("")
            self._say("Demo logins (shown only this once; Django keeps only a hash):")
            for username, password in created.items():
                self._say(f"    {username:<9} {password}")
            self._say("")
        else:
            self._say(
                "demo logins admin, curator, archivist, expert exist (passwords were printed "
                "the first time; `./atelier run --reset-demo-passwords` prints new ones)"
            )

    def _web_command(self, host: str, port: int) -> list[str]:
        if self.options["server"] == "runserver":
            return [*_manage(), "runserver", "--noreload", f"{host}:{port}"]
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(self.options["web_processes"]),
            "--threads",
            "4",
            "--graceful-timeout",
            "10",
            "--log-level",
            "warning",
        ]

    def _spawn(self, label: str, command: list[str]) -> None:
        # A session of its own: Ctrl-C reaches only this supervisor, which stops children in
        # order (web, then workers, then Redis).
        self.children.append((label, self._popen(command)))

    def _popen(self, command: list[str]) -> subprocess.Popen:
        return subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=self.env, start_new_session=True
        )

    def _check_children(self) -> None:
        for label, process in self.children:
            if process.poll() is not None:
                raise CommandError(f"{label} exited with status {process.returncode}")

    def _wait_healthy(self, host: str, port: int) -> dict:
        deadline = time.monotonic() + self.options["health_timeout"]
        report: dict = {}
        while time.monotonic() < deadline:
            self._check_children()
            report = _healthz(host, port)
            workers = report.get("workers", {})
            if (
                report.get("database") == "ok"
                and report.get("redis") == "ok"
                and all(workers.get(queue, 0) >= 1 for queue in QUEUES)
            ):
                return report
            time.sleep(0.5)
        raise CommandError(f"/healthz did not report healthy in time: {report}")

    def _print_urls(self, host: str, port: int, report: dict) -> None:
        base = f"http://{_display_host(host)}:{port}"
        workers = ", ".join(f"{q}: {n}" for q, n in report.get("workers", {}).items())
        self._say("")
        self._say(f"Atelier is running (database ok, Redis ok, workers {workers}).")
        for label, path in (
            ("Kiosk", "/"),
            ("Curator", "/curator/"),
            ("Evaluation", "/evaluation/"),
            ("Admin", "/admin/"),
            ("API docs", "/api/docs/"),
            ("RQ dashboard", "/admin/rq/"),
            ("Health", "/healthz"),
        ):
            self._say(f"    {label:<13} {base}{path}")
        self._say("Press Ctrl-C to stop.")

    # --- running and stopping ---------------------------------------------------------------

    def _supervise(self) -> None:
        # A worker or the reconciler that dies is started again (a new worker reconciles, so
        # the job it was running is re-queued); if the web server dies, everything stops.
        restarts: list[float] = []
        while True:
            for index, (label, process) in enumerate(self.children):
                if process.poll() is None:
                    continue
                if label == "web":
                    raise CommandError(f"the web server exited with status {process.returncode}")
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < 60] + [now]
                if len(restarts) > 5:
                    raise CommandError(f"{label} keeps exiting (status {process.returncode})")
                self._say(f"{label} exited with status {process.returncode}; starting it again")
                self.children[index] = (label, self._popen(list(process.args)))
            time.sleep(1)

    def _shutdown(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        # Web first (no new work), then the reconciler and workers, then Redis.
        for group in (("web",), ("reconciler", *[f"worker {q}" for q in QUEUES])):
            stopping = [(label, p) for label, p in self.children if label in group]
            for _label, process in stopping:
                if process.poll() is None:
                    process.terminate()
            for _label, process in stopping:
                try:
                    # An RQ worker finishes its current job on SIGTERM; give it a moment, then
                    # stop it hard (the reconciler re-queues that job at the next start).
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


def _manage() -> list[str]:
    return [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As gunicorn binds: connections of a previous run in TIME_WAIT don't block the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in {"0.0.0.0", ""} else host  # noqa: S104


def _healthz(host: str, port: int) -> dict:
    request = urllib.request.Request(
        f"http://{_display_host(host)}:{port}/healthz",
        headers={
            # Production settings want an allowed host name and (behind a proxy) https.
            "Host": (settings.ALLOWED_HOSTS or ["localhost"])[0].lstrip("."),
            "X-Forwarded-Proto": "https",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            return json.loads(error.read())
        except ValueError:
            return {}
    except (OSError, ValueError):
        return {}
