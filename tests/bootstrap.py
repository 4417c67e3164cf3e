"""Suite-wide set-up, loaded as a pytest plugin (-p) before Django reads its settings.

Redis is real: REDIS_URL when given (CI), else a private redis-server started here. The
database is whatever DATABASE_URL says (SQLite by default, PostgreSQL on CI). Media go to a
temporary folder.
"""

import os
import tempfile

os.environ.setdefault("ATELIER_ENV", "test")
os.environ.setdefault("ATELIER_VAR_DIR", tempfile.mkdtemp(prefix="atelier-test-var-"))
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="atelier-test-media-"))

if not os.environ.get("REDIS_URL"):
    from jobs.embedded_redis import EmbeddedRedis

    _redis = EmbeddedRedis().start()
    os.environ["REDIS_URL"] = _redis.url

# pytest-xdist (``-n 2`` in pyproject.toml) runs the suite in worker processes that inherit
# this environment from the controller. Each gets its own folders and its own pair of Redis
# database numbers (jobs, then cache: settings.py puts the cache one above), so one process's
# flushdb never empties another's queues; the database is per process already (pytest-django
# adds a _gw0 suffix). One torch thread each: two processes on two cores, no oversubscription.
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _xdist_worker:
    from jobs.embedded_redis import redis_url_database_shifted

    for _name in ("ATELIER_VAR_DIR", "MEDIA_ROOT"):
        os.environ[_name] = os.path.join(os.environ[_name], _xdist_worker)
        os.makedirs(os.environ[_name], exist_ok=True)
    _index = int(_xdist_worker.removeprefix("gw"))
    os.environ["REDIS_URL"] = redis_url_database_shifted(os.environ["REDIS_URL"], 2 + 2 * _index)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
