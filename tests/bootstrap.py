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
