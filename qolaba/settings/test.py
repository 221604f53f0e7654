"""The test suite: real PostgreSQL and Redis (the defaults point at the local services)."""

from .base import *  # noqa: F403
from .base import BASE_DIR, STORAGES, _without_jit, env

SECRET_KEY = "test-only-secret-key"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/qolaba")}
DATABASES["default"]["OPTIONS"] = {"prepare_threshold": 1_000_000, "options": _without_jit(None)}  # as base
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="test_qolaba")}
# The read replica as production configures it from DATABASE_REPLICA_URL, mirroring default in tests (the same test
# database through a second connection): what the router sends there is visible in that connection's queries.
DATABASES["replica"] = {
    **DATABASES["default"],
    "OPTIONS": dict(DATABASES["default"]["OPTIONS"]),
    "TEST": {"MIRROR": "default"},
}
# Off, so that tests which commit read where they write; tests/qolaba/test_routers.py turns it on.
READS_FROM_REPLICA = False

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/13")
RATE_LIMIT_REDIS_URL = env.str("RATE_LIMIT_REDIS_URL", default=REDIS_URL)

# Most tests run tasks in-process; the worker test starts a real worker against Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_TASK_ALWAYS_EAGER = True
# Every task on the default queue: a worker test gives it a queue of its own (a shared `studio` queue would let two
# test runs take each other's chat turns).
CELERY_STUDIO_QUEUE = env.str("CELERY_STUDIO_QUEUE", default="")
CELERY_TASK_ROUTES = {"usage.studio.tasks.*": {"queue": CELERY_STUDIO_QUEUE}} if CELERY_STUDIO_QUEUE else {}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
STORAGES["history"] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": BASE_DIR / "tmp" / "test-history-media"},
}
STORAGES["usage_exports"] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": BASE_DIR / "tmp" / "test-usage-exports"},
}
ACCOUNT_EMAIL_VERIFICATION = "optional"
# Serve static files straight from the finders (no collectstatic before tests, also for the live server).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STUDIO_DEMO_DELAY = 0.0
STUDIO_EAGER_LONG_JOBS_IN_THREAD = False  # tests run jobs where they can see them; the media e2e turns it on
