"""The Celery application: Redis broker, schedules in the database (django-celery-beat)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qolaba.settings.development")

# DjangoTask adds delay_on_commit(): work is only enqueued once the transaction that caused it commits.
app = Celery("qolaba", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
