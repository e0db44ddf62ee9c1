"""The ingress's counters since start, and the stored counts, in the Prometheus text format."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from thothbot.core.classify import Source
from thothbot.core.destinations import DeliveryStatus
from thothbot.core.ingress import StoredCounts
from thothbot.ingress.events import EVENTS
from thothbot.ingress.refusals import REJECTION_REASONS

log = logging.getLogger(__name__)


class Metrics:
    """Counters since start (and the queue's depth), rendered in the Prometheus text format."""

    def __init__(self, classified: Counter[str] | None = None) -> None:
        """``classified``: the triage loop's labels by who decided (zeros without it)."""
        self.accepted: Counter[str] = Counter(dict.fromkeys(EVENTS, 0))
        self.rejected: Counter[str] = Counter(dict.fromkeys(REJECTION_REASONS, 0))
        self.replayed = 0
        self.classified: Counter[str] = (
            Counter(dict.fromkeys(Source, 0)) if classified is None else classified
        )
        self.tickets_opened = 0
        self.failed = 0

    def render(self, pending: int | None = None, stored: StoredCounts | None = None) -> str:
        """The metrics; ``pending`` (the queue's depth) and ``stored`` (what the database
        counts) are left out when they could not be read."""
        lines: list[str] = []

        def metric(
            name: str, help_text: str, samples: Sequence[tuple[str, int]], kind: str = "counter"
        ) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{name}{labels} {value}" for labels, value in samples)

        metric(
            "thothbot_ingress_events_accepted_total",
            "Events stored and answered 202, by event name.",
            [(f'{{event="{_label(k)}"}}', v) for k, v in sorted(self.accepted.items())],
        )
        metric(
            "thothbot_ingress_events_rejected_total",
            "Requests refused, by reason.",
            [(f'{{reason="{_label(k)}"}}', v) for k, v in sorted(self.rejected.items())],
        )
        metric(
            "thothbot_ingress_idempotent_replays_total",
            "Repeated requests answered with their first answer.",
            [("", self.replayed)],
        )
        metric(
            "thothbot_ingress_classifications_total",
            "Urgency labels given to tickets, by who decided: llm, cache or heuristic.",
            [(f'{{source="{k}"}}', v) for k, v in sorted(self.classified.items())],
        )
        metric(
            "thothbot_ingress_tickets_opened_total",
            "Tickets opened from events.",
            [("", self.tickets_opened)],
        )
        metric(
            "thothbot_ingress_events_failed_total",
            "Stored events that could not become a ticket (the desk refused them, or they"
            " failed every attempt).",
            [("", self.failed)],
        )
        if pending is not None:
            metric(
                "thothbot_ingress_events_pending",
                "Events accepted and not yet turned into a ticket (the worker's queue).",
                [("", pending)],
                "gauge",
            )
        if stored is not None:
            metric(
                "thothbot_deliveries",
                "Escalation deliveries in the outbox by status: sent, summarized, failed, and"
                " pending (the delivery queue).",
                [
                    (f'{{status="{status}"}}', stored.deliveries.get(status, 0))
                    for status in sorted(DeliveryStatus)
                ],
                "gauge",
            )
            metric(
                "thothbot_sla_breaches_total",
                "SLA targets breached, over every server and ticket.",
                [("", stored.breaches)],
            )
        return "\n".join(lines) + "\n"


METRICS_HEADERS = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}


async def stored_metrics(
    metrics: Metrics,
    counts: Callable[[], Awaitable[tuple[int, StoredCounts]]],
    within: float | None = None,
) -> str:
    """``metrics`` rendered with what the database counts (``Intake.counts``: the pending
    events, deliveries and breaches), left out if it does not answer."""
    pending: int | None = None
    stored: StoredCounts | None = None
    try:
        pending, stored = await asyncio.wait_for(counts(), within)
    except TimeoutError:
        log.warning("metrics: the database did not answer within %g s", within)
    except Exception:
        log.exception("metrics: the stored counts could not be read")
    return metrics.render(pending, stored)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
