"""Settings shared by every environment; everything that varies comes from the environment."""

from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "guardian",
    "django_htmx",
    "template_partials",
    "ninja",  # its Swagger UI page then loads the bundled static files instead of a CDN
    "django_celery_beat",
    "qolaba.outbox",
    "orgs",
    "workspaces",
    "billing",
    "usage",
    "qolaba.demo",
]

MIDDLEWARE = [
    # First, so that every answer (the outage 503 page too) carries the Content-Security-Policy and Permissions-Policy.
    "csp.middleware.CSPMiddleware",
    "qolaba.security.permissions_policy",
    "qolaba.health.HealthMiddleware",  # /healthz and /readyz, before the host check and the HTTPS redirect
    "qolaba.outage.OutageMiddleware",  # a 503 with Retry-After while the database or Redis is unreachable
    "django.middleware.security.SecurityMiddleware",
    "usage.middleware.api_guard",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "qolaba.security.SessionActivityMiddleware",
    "qolaba.security.StaffTwoFactorMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "qolaba.middleware.RequestContextMiddleware",
]

ROOT_URLCONF = "qolaba.urls"
WSGI_APPLICATION = "qolaba.wsgi.application"
ASGI_APPLICATION = "qolaba.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "qolaba.context_processors.tenant",
                "qolaba.context_processors.csp_nonce",
            ],
        },
    },
]


def _without_jit(options: str | None) -> str:
    """libpq's `options` (server settings of each connection) with JIT compilation off."""
    return f"{options} -c jit=off" if options else "-c jit=off"


DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django disables psycopg's prepared statements (threshold None). A threshold no query reaches keeps Django's
    # own queries unprepared while the ledger's hot statement prepares itself explicitly (billing.ledger).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 1_000_000
    # No JIT compilation: the usage read is one query whose branches PostgreSQL skips at run time (a one-time
    # filter) but costs at plan time, so its estimate passes jit_above_cost and compiling took 4-8 s of a query that
    # runs in 30 ms (EXPLAIN ANALYZE at 10M events). The app's queries are all short; none gains from JIT.
    DATABASES["default"]["OPTIONS"]["options"] = _without_jit(DATABASES["default"]["OPTIONS"].get("options"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded demo runs long Studio jobs in threads beside requests: a transaction takes the write lock when it
    # begins (IMMEDIATE) and waits for it, instead of failing with "database is locked" when a read turns into a
    # write while another thread writes; WAL lets pages read while a job writes its progress.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
# A read replica (streaming replication of the same database): dashboards and exports read from it, explicitly
# (qolaba.routers); every write and every read inside a transaction stays on default.
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
    DATABASES["replica"]["ATOMIC_REQUESTS"] = False
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    if DATABASES["replica"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["replica"].setdefault("OPTIONS", {})["prepare_threshold"] = 1_000_000
        DATABASES["replica"]["OPTIONS"]["options"] = _without_jit(DATABASES["replica"]["OPTIONS"].get("options"))
DATABASE_ROUTERS = ["qolaba.routers.ReplicaRouter"]
# With a replica: whether dashboards and exports read from it (off: everything reads from default).
READS_FROM_REPLICA = env.bool("READS_FROM_REPLICA", default=True)
# A kept connection is checked before each request reuses it, so after a database restart every process recovers
# by itself (a request that meets the outage gets a 503: qolaba.outage).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis is the Celery broker only: nothing a request does needs it. Without a Redis URL tasks run eagerly.
REDIS_URL = env.str("REDIS_URL", default="")
# The cache holds allauth's login/signup/reset rate limits and its used-TOTP-code marks: in the database, so that
# sign-in keeps working (and keeps being throttled) while Redis is down; shared by every process. The table is
# created by the migration outbox/0002 (and by Django's test runner).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "qolaba_cache"}}

# Response headers (docs/security.md). Every script is a static file from this origin; an inline <script> must carry
# the request's nonce (`{{ csp_nonce }}`, made only when a page uses it). No 'unsafe-inline', no 'unsafe-eval':
# htmx runs with allowEval off and without its injected indicator <style> (base.html's htmx-config).
# data: images are the authenticator QR code of the two-factor setup page.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# Browser features no page uses are switched off for the page and anything it could embed.
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), midi=(), payment=(), publickey-credentials-get=(), serial=(), usb=(), xr-spatial-tracking=()"
)
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

AUTH_USER_MODEL = "orgs.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"

# django-allauth: the email address is the identity.
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_RATE_LIMITS = {
    "login_failed": env.str("LOGIN_FAILED_RATE_LIMIT", default="10/m/ip,5/5m/key"),
    "signup": "20/m/ip",
    # Password reset emails: per IP, and per address (known or not, so the limit tells nothing about accounts).
    "reset_password": env.str("PASSWORD_RESET_RATE_LIMIT", default="20/m/ip,5/h/key"),
    "confirm_email": "1/3m/key",
}
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Qolaba] "

# Two-factor sign-in (allauth.mfa): an authenticator app (TOTP) with recovery codes. WebAuthn is left off: its
# pages need JavaScript and an HTTPS origin, and every page here works without JavaScript.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Qolaba"
# Staff (the Django admin at /admin/) must have two-factor sign-in set up; on in production settings.
STAFF_REQUIRE_TWO_FACTOR = env.bool("STAFF_REQUIRE_TWO_FACTOR", default=False)
# Sessions (allauth.usersessions): each signed-in browser is listed with its IP and when it was last seen. Changing
# the password keeps the current session and ends every other one (Django's session hash no longer matches).
# allauth's own tracking writes on every request; qolaba.security.SessionActivityMiddleware does it at most once
# every SESSION_ACTIVITY_INTERVAL seconds per session instead.
USERSESSIONS_TRACK_ACTIVITY = False
SESSION_ACTIVITY_INTERVAL = 5 * 60

# django-guardian: no anonymous-user row; anonymous requests never reach object checks.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False
GUARDIAN_RENDER_403 = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
# Generated media of the workspaces' history: never under MEDIA_ROOT (which may be served publicly, for logos);
# only the history media view reads it, after the permission check.
HISTORY_MEDIA_ROOT = Path(env.str("HISTORY_MEDIA_ROOT", default=str(BASE_DIR / "private-media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "history": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": HISTORY_MEDIA_ROOT}},
    # Usage exports prepared in the background: private too, served only to their requester (usage.views).
    "usage_exports": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": Path(env.str("USAGE_EXPORT_ROOT", default=str(HISTORY_MEDIA_ROOT / "usage-exports")))},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(BASE_DIR / "tmp" / "emails"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Qolaba <no-reply@qolaba.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))

# Celery: Redis in production and tests; without a broker URL tasks run in-process.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL)
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://localhost/"
    CELERY_RESULT_BACKEND = "cache+memory://"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="qolaba")
# Task modules besides each app's `tasks` (which Celery finds by itself): the Studio's, inside the usage app.
CELERY_IMPORTS = ["usage.studio.tasks"]
# Studio generations wait seconds to minutes on a provider's network answer: they go to a queue of their own, served
# by a thread-pool worker (`--pool=threads --concurrency 50`, docs/operations.md), so that 50 chats at once neither
# need 50 prefork processes nor keep the short jobs (outbox relay, roll-up, sweepers) waiting behind them. Empty:
# no routing, every task goes to the default queue (the test suite, whose worker tests use queues of their own).
CELERY_STUDIO_QUEUE = env.str("CELERY_STUDIO_QUEUE", default="studio")
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = (
    {"usage.studio.tasks.*": {"queue": CELERY_STUDIO_QUEUE}} if CELERY_STUDIO_QUEUE else {}
)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = "UTC"
# A publish that cannot reach the broker fails within a second instead of retrying for seconds: the outbox keeps the
# message and the beat relay publishes it later.
#
# A message taken by a worker that died without acknowledging it (SIGKILL, lost machine) goes back to the queue after
# `visibility_timeout` seconds. Longer than the longest task, or a slow task would run twice at once.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=60 * 60),
    "socket_connect_timeout": 2,
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # The outbox: what the after-commit relay could not publish (broker down) goes out within seconds of its return.
    "relay-outbox": {"task": "qolaba.outbox.tasks.outbox_relay_run", "schedule": 5, "options": {"expire_seconds": 5}},
    "prune-outbox": {"task": "qolaba.outbox.tasks.outbox_prune_run", "schedule": crontab(hour=4, minute=30)},
    "purge-deleted-organizations": {"task": "orgs.tasks.organizations_purge_deleted_run", "schedule": 60 * 60},
    "release-expired-holds": {"task": "usage.tasks.holds_expire_run", "schedule": 60},
    # Studio chat turns whose run was lost (a killed worker): closed once their hold was released.
    "abandon-lost-chat-turns": {"task": "usage.studio.tasks.chat_turns_abandon_run", "schedule": 60},
    # The same for the Studio's media jobs (Image, Video, Speech, Music).
    "abandon-lost-studio-jobs": {"task": "usage.studio.tasks.studio_jobs_abandon_run", "schedule": 60},
    # Every 30 s, so the roll-up is under a minute behind (reads add the newer events, so they are exact anyway).
    # A run that could not start within 30 s is dropped: the next one does its work.
    "usage-rollup": {
        "task": "usage.tasks.rollup_update_run",
        "schedule": 30,
        "options": {"expire_seconds": 30},
    },
    "prune-idempotency-keys": {
        "task": "usage.tasks.idempotent_requests_prune_run",
        "schedule": crontab(hour=4, minute=0),
    },
    "credit-alerts": {"task": "billing.tasks.alerts_evaluate_run", "schedule": 60},
    # The runway moves with days of spend, not minutes: every 15 minutes is soon enough (the billing alerts cannot
    # run it: billing sits below the usage read it needs).
    "runway-alerts": {"task": "usage.tasks.runway_alerts_evaluate_run", "schedule": 15 * 60},
    "renew-subscriptions": {"task": "billing.tasks.subscriptions_renew_due_run", "schedule": 10 * 60},
    "expire-credit-packs": {"task": "billing.tasks.packs_expire_due_run", "schedule": 60 * 60},
    "reconcile-ledger": {"task": "billing.tasks.ledger_reconcile_run", "schedule": crontab(hour=3, minute=15)},
    # Hourly: a month closes in the first run at least 10 minutes after it ended in the org's time zone (and once
    # every generation held in it is settled), so every time zone's midnight is caught within the hour.
    "close-statements": {"task": "usage.tasks.statements_close_due_run", "schedule": crontab(minute=25)},
    # Usage export files past their download window are deleted (the rows stay, marked expired).
    "expire-usage-exports": {"task": "usage.tasks.usage_exports_expire_run", "schedule": 15 * 60},
    # Daily: usage event partitions for the months ahead, and retention (docs/operations.md).
    "usage-partitions": {"task": "usage.tasks.partitions_maintain_run", "schedule": crontab(hour=2, minute=40)},
}

# The outbox: a message published but not done after this long (lost by the broker) is published again (its task
# is idempotent); after this many publications it is left for an operator (its last error is kept).
OUTBOX_REDELIVER_AFTER_SECONDS = env.int("OUTBOX_REDELIVER_AFTER_SECONDS", default=15 * 60)
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=50)
# The metering API's limit per key (docs/api.md): requests per window, "1200/m" (also "50/10s", "10000/h"); empty
# or 0 turns it off. Counted in Redis (qolaba.ratelimit); while Redis is unreachable the limit is not applied (and a
# warning is logged) rather than refusing the API.
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="1200/m")
RATE_LIMIT_REDIS_URL = env.str("RATE_LIMIT_REDIS_URL", default=REDIS_URL)
RATE_LIMIT_REDIS_TIMEOUT = env.float("RATE_LIMIT_REDIS_TIMEOUT", default=0.25)  # seconds, connect and each command
RATE_LIMIT_RETRY_SECONDS = env.float("RATE_LIMIT_RETRY_SECONDS", default=5.0)  # Redis is skipped after a failure
# Seconds a client is told to wait (Retry-After) when the database or the broker is unreachable.
OUTAGE_RETRY_AFTER_SECONDS = env.int("OUTAGE_RETRY_AFTER_SECONDS", default=5)

# Product settings.
ORGANIZATION_LOGO_MAX_BYTES = env.int("ORGANIZATION_LOGO_MAX_BYTES", default=2 * 1024 * 1024)
ORGANIZATION_RETENTION_DAYS = env.int("ORGANIZATION_RETENTION_DAYS", default=30)
# A usage CSV export of more rows than this is prepared by a Celery job instead of streamed in the request.
USAGE_EXPORT_SYNC_MAX_ROWS = env.int("USAGE_EXPORT_SYNC_MAX_ROWS", default=50_000)
# How long the file of a prepared export can be downloaded; the beat task deletes it afterwards.
USAGE_EXPORT_TTL_HOURS = env.int("USAGE_EXPORT_TTL_HOURS", default=24)
# Usage events (PostgreSQL: one partition per month, usage.partitions): months created ahead, and how many full
# months before the current one are kept (unset: forever; older months are dropped whole, their totals stay in
# the roll-up).
USAGE_PARTITIONS_AHEAD_MONTHS = env.int("USAGE_PARTITIONS_AHEAD_MONTHS", default=3)
USAGE_RETENTION_MONTHS: int | None = env.int("USAGE_RETENTION_MONTHS", default=None)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# How many reverse proxies (load balancer, ...) add themselves to X-Forwarded-For in front of the app.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT  # the IPs allauth records (rate limits, sessions) alike

# The public address of the app, for links in emails sent outside a request (Celery tasks).
SITE_URL = env.str("SITE_URL", default="http://localhost:8000").rstrip("/")
INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)
# Invitation emails (new and resent) an organization may send in any hour (0: no limit); counted in the database.
INVITATIONS_PER_HOUR = env.int("INVITATIONS_PER_HOUR", default=50)
MEMBERS_PAGE_SIZE = 25
# Rows each workspace balance is striped over, so that concurrent spenders of one pool update different rows.
CREDIT_BALANCE_STRIPES = env.int("CREDIT_BALANCE_STRIPES", default=8)

# The Studio (usage/studio): the OpenAI-compatible provider's server, and how a chat turn is estimated and held.
STUDIO_OPENAI_BASE_URL = env.str("STUDIO_OPENAI_BASE_URL", default="")
STUDIO_OPENAI_API_KEY = env.str("STUDIO_OPENAI_API_KEY", default="")
STUDIO_OPENAI_TIMEOUT = env.float("STUDIO_OPENAI_TIMEOUT", default=60.0)  # seconds, per request and per stream read
STUDIO_OPENAI_MAX_RETRIES = env.int("STUDIO_OPENAI_MAX_RETRIES", default=2)  # the SDK's backoff retries
STUDIO_CHAT_MAX_TOKENS = env.int("STUDIO_CHAT_MAX_TOKENS", default=800)  # the longest reply asked for (and held)
STUDIO_HOLD_TTL_SECONDS = env.int("STUDIO_HOLD_TTL_SECONDS", default=900)  # the sweeper releases a stuck turn's hold
STUDIO_DEMO_DELAY = env.float("STUDIO_DEMO_DELAY", default=0.03)  # seconds between the demo's words
# Without a broker (eager tasks, the demo), run a long Studio job (video, music) in a thread of the web process so the
# page can show its progress and cancel it; with a broker it always runs in the Celery worker.
STUDIO_EAGER_LONG_JOBS_IN_THREAD = env.bool("STUDIO_EAGER_LONG_JOBS_IN_THREAD", default=True)
