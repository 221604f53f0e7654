"""Demo chat threads: a few conversations per workspace, run through the Studio's services with the demo provider
(offline, eagerly), so that the Studio and History show real turns, held and captured like any other."""

from __future__ import annotations

from billing.ledger import CreditLimitReached
from orgs.models import Organization
from qolaba.demo.usage import _spenders
from qolaba.tools import Tool
from usage.models import Price, Provider
from usage.studio.models import ChatThread
from usage.studio.providers import DemoProvider
from usage.studio.services import chat_turn_run, chat_turn_start
from workspaces.models import Workspace

CONVERSATIONS: list[list[str]] = [
    [
        "Draft a one-page brief for our spring campaign",
        "Make the tone warmer and shorter",
        "Suggest three subject lines for the launch email",
    ],
    [
        "Summarise the feedback from last week's user interviews",
        "Which of these points should we fix first?",
        "Write a short update for the team about it",
    ],
]


def studio_seed(*, organization: Organization) -> int:
    """Chat threads in every live workspace of the organization that has none yet. Returns how many turns ran."""
    price = Price.objects.active().filter(tool=Tool.CHAT, provider=Provider.DEMO).order_by("credits_per_unit").first()
    if price is None:
        return 0
    provider = DemoProvider(delay=0)
    turns = 0
    for workspace in Workspace.objects.live().filter(organization=organization).select_related("organization"):
        if ChatThread.objects.filter(workspace=workspace).exists():
            continue
        spenders = _spenders(workspace, organization)
        if not spenders:
            continue
        for index, prompts in enumerate(CONVERSATIONS):
            user = spenders[index % len(spenders)][0]
            thread = None
            for prompt in prompts:
                try:
                    turn = chat_turn_start(workspace=workspace, user=user, price=price, prompt=prompt, thread=thread)
                except CreditLimitReached:
                    break  # a member at their limit: the demo keeps what fit
                # Run now, in the seeding's transaction; the task queued on commit finds the turn done.
                chat_turn_run(turn_id=turn.pk, provider=provider)
                thread = turn.thread
                turns += 1
    return turns
