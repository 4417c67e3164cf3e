"""Atelier settings, read from the environment.

Three modes (ATELIER_ENV): ``dev`` (default: SQLite, DEBUG on), ``test`` (the suite; same
database engines as production, chosen by DATABASE_URL) and ``production`` (refuses to start
without a secret key and allowed hosts; `manage.py check --deploy` is clean).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from jobs.embedded_redis import redis_url_database_shifted

BASE_DIR = Path(__file__).resolve().parent.parent
ATELIER_ENV = os.environ.get("ATELIER_ENV", "dev")
if ATELIER_ENV not in {"dev", "test", "production"}:
    raise ImproperlyConfigured(f"ATELIER_ENV must be dev, test or production, not {ATELIER_ENV!r}")
PRODUCTION = ATELIER_ENV == "production"


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


VAR_DIR = Path(os.environ.get("ATELIER_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
if PRODUCTION:
    if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured(
            "Production needs DJANGO_SECRET_KEY: at least 50 random characters."
        )
    if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "Production needs DJANGO_ALLOWED_HOSTS: a comma-separated list of host names, not '*'."
        )
    DEBUG = False
else:
    SECRET_KEY = SECRET_KEY or "django-insecure-atelier-development-key-not-for-production"
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["localhost", "127.0.0.1", "[::1]", "testserver"]
    DEBUG = env_bool("DJANGO_DEBUG", ATELIER_ENV == "dev")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "axes",
    "csp",
    # The rooms, bottom up (ARCHITECTURE.md): a lower one never imports a higher one.
    "jobs",
    "archives",
    "heritage",
    "generation",
    "evaluation",
    "demo",
    "config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.http.ConditionalGetMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a lock-out into its page (or 429 JSON for the API).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite file by default; DATABASE_URL (postgres://...) switches to PostgreSQL via psycopg 3.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'atelier.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so worker processes started by tests share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    # Web, workers and the run command write concurrently: wait for the lock, don't fail.
    # IMMEDIATE: a transaction takes the write lock at BEGIN, so the busy timeout applies; a
    # deferred one that reads, then writes after another process committed, fails at once
    # with "database is locked" whatever the timeout.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

if ATELIER_ENV == "test":
    # Password hashing is deliberately slow; the suite creates many users on 2 cores.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh", "中文"), ("ug", "ئۇيغۇرچە")]
LANGUAGES_BIDI = ["ug", "ar", "he", "fa", "ur"]
# Interface translations (makemessages / compilemessages); the compiled .mo files are committed
# (tests/config/test_translations.py checks they match the .po files).
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing one
# Front-end packages from npm (package.json, pinned by package-lock.json; `./atelier run|test`
# installs them), served as static files under /static/vendor/<name>/: never from a CDN.
NODE_MODULES = BASE_DIR / "node_modules"
VENDORED_STATIC = {
    "htmx": "htmx.org/dist",
    "openseadragon": "openseadragon/build/openseadragon",
    "fonts/noto-sans": "@fontsource/noto-sans/files",
    "fonts/noto-sans-arabic": "@fontsource/noto-sans-arabic/files",
    "fonts/noto-sans-sc": "@fontsource/noto-sans-sc/files",
}
STATICFILES_DIRS = [
    (f"vendor/{name}", NODE_MODULES / path)
    for name, path in VENDORED_STATIC.items()
    if (NODE_MODULES / path).is_dir()
]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))

# Every file goes through the storage API so workers on other hosts see the same files.
# ATELIER_STORAGE=s3 uses django-storages (AWS_* variables) for S3-compatible storage.
# Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (read by django-storages).
ATELIER_STORAGE = os.environ.get("ATELIER_STORAGE", "filesystem")
if ATELIER_STORAGE not in {"filesystem", "s3"}:
    raise ImproperlyConfigured("ATELIER_STORAGE must be filesystem or s3")
if ATELIER_STORAGE == "s3":
    if not os.environ.get("AWS_STORAGE_BUCKET_NAME"):
        raise ImproperlyConfigured("ATELIER_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME")
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["AWS_STORAGE_BUCKET_NAME"],
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,  # MinIO, Ceph, ...
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            "location": os.environ.get("AWS_LOCATION", ""),
            "custom_domain": os.environ.get("AWS_S3_CUSTOM_DOMAIN") or None,
            "addressing_style": os.environ.get("AWS_S3_ADDRESSING_STYLE") or None,
            "querystring_auth": env_bool("AWS_QUERYSTRING_AUTH", True),
            # Stored files are checksummed records: never overwrite one silently.
            "file_overwrite": False,
            "default_acl": None,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Downloads (archives/downloads.py): no file is served by its storage path; a view checks who
# may have it, then streams it (django), hands it to the front server (x-accel-redirect for
# nginx, x-sendfile for Apache; filesystem storage only) or redirects to a signed S3 URL
# (s3-signed, the default with ATELIER_STORAGE=s3) valid ATELIER_FILE_URL_EXPIRE seconds.
ATELIER_FILE_SENDER = os.environ.get(
    "ATELIER_FILE_SENDER", "s3-signed" if ATELIER_STORAGE == "s3" else "django"
)
_file_senders = {"django", "x-accel-redirect", "x-sendfile", "s3-signed"}
if ATELIER_FILE_SENDER not in _file_senders:
    raise ImproperlyConfigured(f"ATELIER_FILE_SENDER must be one of {sorted(_file_senders)}")
if (ATELIER_FILE_SENDER == "s3-signed") != (ATELIER_STORAGE == "s3"):
    raise ImproperlyConfigured(
        "ATELIER_FILE_SENDER=s3-signed is for ATELIER_STORAGE=s3, and S3 storage sends by s3-signed"
    )
if ATELIER_FILE_SENDER == "s3-signed" and not env_bool("AWS_QUERYSTRING_AUTH", True):
    raise ImproperlyConfigured("ATELIER_FILE_SENDER=s3-signed needs AWS_QUERYSTRING_AUTH=true")
# nginx: the `internal` location that maps onto MEDIA_ROOT (docs/deploy.md).
ATELIER_FILE_INTERNAL_PREFIX = os.environ.get("ATELIER_FILE_INTERNAL_PREFIX", "/protected-media/")
if not (ATELIER_FILE_INTERNAL_PREFIX[:1] == "/" == ATELIER_FILE_INTERNAL_PREFIX[-1:]):
    raise ImproperlyConfigured("ATELIER_FILE_INTERNAL_PREFIX must start and end with /")
ATELIER_FILE_URL_EXPIRE = int(os.environ.get("ATELIER_FILE_URL_EXPIRE", 300))

# Uploads: keep requests bounded; image limits are enforced again when images are validated.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("ATELIER_MAX_REQUEST_BYTES", 10 * 1024 * 1024))
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
ATELIER_MAX_IMAGE_BYTES = int(os.environ.get("ATELIER_MAX_IMAGE_BYTES", 50 * 1024 * 1024))
ATELIER_MAX_IMAGE_PIXELS = int(os.environ.get("ATELIER_MAX_IMAGE_PIXELS", 64_000_000))
# Bags offered for validation or import (archives/bagit_validate.py, docs/deploy.md "Bags"):
# checked from the archive's member list before anything is extracted. A real training-run
# bag is hundreds of MB; PNG and safetensors hardly compress, so 200:1 is only reached by a bomb.
ATELIER_BAG_MAX_UPLOAD_BYTES = int(os.environ.get("ATELIER_BAG_MAX_UPLOAD_BYTES", 8 * 1024**3))
ATELIER_BAG_MAX_BYTES = int(os.environ.get("ATELIER_BAG_MAX_BYTES", 8 * 1024**3))  # unpacked
ATELIER_BAG_MAX_FILE_BYTES = int(os.environ.get("ATELIER_BAG_MAX_FILE_BYTES", 4 * 1024**3))
ATELIER_BAG_MAX_MEMBERS = int(os.environ.get("ATELIER_BAG_MAX_MEMBERS", 100_000))
ATELIER_BAG_MAX_RATIO = float(os.environ.get("ATELIER_BAG_MAX_RATIO", 200))  # unpacked:packed
ATELIER_BAG_TEMP_DIR = os.environ.get("ATELIER_BAG_TEMP_DIR") or None  # None: system temp

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# Login lock-out (django-axes): AXES_FAILURE_LIMIT wrong passwords for one username from one
# address lock that pair out for AXES_COOLOFF_TIME, on the login page and the admin alike (both
# call authenticate() with the request). A correct password is refused while locked; a success
# before the limit resets the count. `manage.py axes_reset` (or axes_reset_username NAME)
# lifts lock-outs early. Attempts are stored in the database (axes' own tables).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out pair before checking
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("ATELIER_LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("ATELIER_LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "core.throttling.client_ip"  # same address as the API throttles
AXES_VERBOSE = False

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # Counters live in the cache (Redis below), shared by every web process. A 429 carries
    # Retry-After and {"detail": "Request was throttled. Expected available in N seconds."}.
    # ``expensive``: creating training runs, sweeps and generation requests (GPU time), per user.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
        "core.throttling.ExpensiveWriteThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("ATELIER_THROTTLE_ANON", "600/minute"),
        "user": os.environ.get("ATELIER_THROTTLE_USER", "3000/minute"),
        "expensive": os.environ.get("ATELIER_THROTTLE_EXPENSIVE", "60/hour"),
    },
    # Proxies in front of the web server (nginx: 1): the client address is then taken from
    # X-Forwarded-For, for throttles and the login lock-out. 0 trusts no header.
    "NUM_PROXIES": int(os.environ.get("ATELIER_NUM_PROXIES", "0")) or None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Atelier API",
    "DESCRIPTION": "Heritage catalogue, LoRA training, generation and expert evaluation.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Kiosks run offline: Swagger UI assets come from drf-spectacular-sidecar, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The standard 400/403/404/429 error answers on every operation (config/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_error_responses",
    ],
    # One name for a choice set used by several serializers (check --deploy warns otherwise).
    "ENUM_NAME_OVERRIDES": {
        "SemioticCategoryEnum": "heritage.models.SemioticAnnotation.Category",
        "JobStatusEnum": "jobs.models.Job.Status",
        "StudyStatusEnum": "evaluation.models.Study.Status",
    },
}

# Redis: REDIS_URL, or the private Redis that `manage.py atelier_run` starts (it sets REDIS_URL).
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
ATELIER_JOB_TIMEOUTS = {"default": 30 * 60, "gpu": 24 * 60 * 60}
RQ_QUEUES = {
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": ATELIER_JOB_TIMEOUTS["default"]},
    "gpu": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": ATELIER_JOB_TIMEOUTS["gpu"]},
}
RQ_SHOW_ADMIN_LINK = True

# The cache holds throttle counters and cached public API responses, so every web process must
# share it: Redis whenever one is configured (production, the run command, the suite), in its
# own database number so that clearing the cache never empties the job queues. A bare
# `runserver` without REDIS_URL keeps a per-process memory cache.
if "REDIS_URL" in os.environ or PRODUCTION:
    _cache_url = os.environ.get("ATELIER_CACHE_URL", "")
    if not _cache_url:
        _cache_url = redis_url_database_shifted(REDIS_URL, 1)
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_url,
            # The suite runs in one Redis: keep each test run's keys apart.
            "KEY_PREFIX": f"test{os.getpid()}" if ATELIER_ENV == "test" else "atelier",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Base model used when a request names none: the demo model shipped in the repository.
ATELIER_DEMO_MODEL_DIR = Path(os.environ.get("ATELIER_DEMO_MODEL_DIR", BASE_DIR / "demo" / "model"))
# GPU memory of the target worker in GiB, for the training pre-flight check (0 = CPU worker).
ATELIER_WORKER_GPU_GIB = float(os.environ.get("ATELIER_WORKER_GPU_GIB", "0"))

# Optional feature-extractor weights on disk for KID / CLIP score in study reports (a local
# path; empty: the report's slot says "not configured"). Nothing is downloaded.
EVALUATION_FEATURE_WEIGHTS = os.environ.get("EVALUATION_FEATURE_WEIGHTS", "")
EVALUATION_FEATURE_EXTRACTOR = os.environ.get("EVALUATION_FEATURE_EXTRACTOR", "")

# Optional OpenAI-compatible chat endpoint for prompt drafting (off unless a URL is set).
ATELIER_LLM_URL = os.environ.get("ATELIER_LLM_URL", "")
ATELIER_LLM_MODEL = os.environ.get("ATELIER_LLM_MODEL", "")
ATELIER_LLM_KEY = os.environ.get("ATELIER_LLM_KEY", "")
ATELIER_LLM_TIMEOUT = float(os.environ.get("ATELIER_LLM_TIMEOUT", "20"))

ATELIER_KIOSK_IDLE_SECONDS = int(os.environ.get("ATELIER_KIOSK_IDLE_SECONDS", "90"))
ATELIER_KIOSK_WARNING_SECONDS = int(os.environ.get("ATELIER_KIOSK_WARNING_SECONDS", "30"))

ATELIER_ORGANISATION = os.environ.get("ATELIER_ORGANISATION", "Atelier demo museum")
ATELIER_CONTACT_EMAIL = os.environ.get("ATELIER_CONTACT_EMAIL", "archive@example.org")

# Content credentials (docs/content-credentials.md): every generated image is signed (C2PA)
# with the museum's certificate chain and key, PEM files. Unset outside production: the
# development chain `manage.py c2pa_dev_certificate` makes in ATELIER_C2PA_DEV_DIR (made on
# first use, trusted by nobody else). Production refuses to sign without the museum's own.
ATELIER_C2PA_CERT = os.environ.get("ATELIER_C2PA_CERT", "")
ATELIER_C2PA_KEY = os.environ.get("ATELIER_C2PA_KEY", "")
ATELIER_C2PA_ALG = os.environ.get("ATELIER_C2PA_ALG", "es256")
ATELIER_C2PA_TSA_URL = os.environ.get("ATELIER_C2PA_TSA_URL", "")  # RFC 3161 time stamps
# PEM roots the verification page trusts (default: the development root when it signs).
ATELIER_C2PA_TRUST_ANCHORS = os.environ.get("ATELIER_C2PA_TRUST_ANCHORS", "")
ATELIER_C2PA_DEV_DIR = Path(os.environ.get("ATELIER_C2PA_DEV_DIR", VAR_DIR / "c2pa"))
# The visible "AI-generated" mark (GB 45438-2025) on downloaded copies; curators' working
# copies go without it unless ATELIER_AI_MARK_CURATOR_COPIES is on.
ATELIER_AI_MARK_DOWNLOADS = env_bool("ATELIER_AI_MARK_DOWNLOADS", True)
ATELIER_AI_MARK_CURATOR_COPIES = env_bool("ATELIER_AI_MARK_CURATOR_COPIES", False)

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain http
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# Content-Security-Policy (django-csp) on every response. Every page's script is a static file
# (JSON config sits in <script type="application/json">, which is data, not script); a template
# that must inline one marks it with {{ request.csp_nonce }}. style-src-attr allows inline
# style *attributes* only (not <style> elements): the item page positions each annotation box
# and sets the image's aspect ratio from the data. The API docs views relax style-src for
# themselves (config/views.py says why). Files in S3 are shown from the bucket's address.
_media_sources = env_list("ATELIER_CSP_MEDIA_SOURCES")
if ATELIER_STORAGE == "s3" and not _media_sources:
    for _source in (os.environ.get("AWS_S3_CUSTOM_DOMAIN"), os.environ.get("AWS_S3_ENDPOINT_URL")):
        if _source:
            _media_sources.append(_source if "://" in _source else f"https://{_source}")
    if not _media_sources:
        _media_sources.append("https://*.amazonaws.com")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": [SELF, "data:", "blob:", *_media_sources],
        "media-src": [SELF, *_media_sources],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("ATELIER_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
