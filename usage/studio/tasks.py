"""The Studio's background jobs (thin: load by id, call a service). Services enqueue them by name through the outbox."""

from __future__ import annotations

from celery import shared_task

from usage.studio.services import chat_turn_run, chat_turns_abandon


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
