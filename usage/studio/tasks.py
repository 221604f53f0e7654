"""The Studio's background jobs (thin: load by id, call a service). Services enqueue them by name through the outbox."""

from __future__ import annotations

import threading

from celery import shared_task
from django import db
from django.conf import settings

from usage.studio.services import (
    chat_turn_run,
    chat_turns_abandon,
    studio_job_is_long,
    studio_job_run,
    studio_jobs_abandon,
)


@shared_task(acks_late=False)
def chat_turn_run_task(turn_id: int) -> str | None:
    """Run one chat turn. Not acknowledged late: a worker killed mid-stream leaves the turn's hold to the sweeper
    (`holds_expire_run`) rather than streaming it twice; a duplicate delivery finds the turn claimed and does nothing.
    """
    turn = chat_turn_run(turn_id=turn_id)
    return turn.status if turn is not None else None


@shared_task
def chat_turns_abandon_run() -> int:
    """Every minute (beat): close the turns whose run was lost, once the sweeper released their hold."""
    return chat_turns_abandon()


@shared_task(acks_late=False)
def studio_job_run_task(job_id: int) -> str | None:
    """Run one Image, Video, Speech or Music job. Not acknowledged late, like chat: a worker killed mid-job leaves
    the hold to the sweeper, never a second run; a duplicate delivery finds the job claimed and does nothing.

    Without a broker (the demo's eager tasks) a long job (video, music) runs in a thread of the web process, so the
    request that started it answers at once and the page can show its progress and its Cancel button."""
    if settings.STUDIO_EAGER_LONG_JOBS_IN_THREAD and settings.CELERY_TASK_ALWAYS_EAGER and studio_job_is_long(job_id):
        threading.Thread(target=_run_in_thread, args=(job_id,), daemon=True, name=f"studio-job-{job_id}").start()
        return "thread"
    job = studio_job_run(job_id=job_id)
    return job.status if job is not None else None


def _run_in_thread(job_id: int) -> None:
    try:
        studio_job_run(job_id=job_id)
    finally:
        db.connection.close()  # the thread's own connection


@shared_task
def studio_jobs_abandon_run() -> int:
    """Every minute (beat): close the media jobs whose run was lost, once the sweeper released their hold."""
    return studio_jobs_abandon()
