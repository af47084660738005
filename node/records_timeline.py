"""One vendor's timeline (mixed into ``node.records.Records``): everything recorded as dated events."""

from __future__ import annotations

import json

from node.records_model import TimelineEvent, _EVENT_ORDER, resolve_vendor


class TimelineRecords:
    """``Records.timeline``; its store (``_store``) is ``Records``'."""

    def timeline(self, ref: int | str) -> list[TimelineEvent]:
        """Everything recorded about one vendor as dated events, newest first."""
        v = resolve_vendor(self._store, ref)
        vid = v["id"]
        events = [TimelineEvent(v["started_at"], "started", vid, vid, "relationship started")]
        if v["ended_at"] is not None:
            reason = f": {v['end_reason']}" if v["end_reason"] else ""
            events.append(
                TimelineEvent(
                    v["ended_at"],
                    "ended",
                    vid,
                    vid,
                    f"relationship ended{reason}",
                    {"reason": v["end_reason"]},
                )
            )
        q = self._store.query
        for r in q("SELECT * FROM engagement_changes WHERE vendor_id = ?", [vid]):
            events.append(
                TimelineEvent(
                    r["at"],
                    "engagement",
                    vid,
                    r["id"],
                    f"engagement set to {r['level']}",
                    {"level": r["level"]},
                )
            )
        for r in q("SELECT * FROM purchases WHERE vendor_id = ?", [vid]):
            events.append(
                TimelineEvent(
                    r["bought_at"],
                    "purchase",
                    vid,
                    r["id"],
                    f"bought {r['product']}",
                    {"product": r["product"], "price_minor": r["price_minor"], "currency": r["currency"]},
                )
            )
        for r in q("SELECT * FROM notes WHERE vendor_id = ?", [vid]):
            events.append(
                TimelineEvent(
                    r["at"], "note", vid, r["id"], _clip(r["text"]), {"tags": json.loads(r["tags"])}
                )
            )
        for r in q("SELECT * FROM ratings WHERE vendor_id = ?", [vid]):
            comment = f": {_clip(r['comment'])}" if r["comment"] else ""
            events.append(
                TimelineEvent(
                    r["at"], "rating", vid, r["id"], f"rated {r['stars']}/5{comment}", {"stars": r["stars"]}
                )
            )
        for r in q("SELECT * FROM recommendations WHERE vendor_id = ?", [vid]):
            verdict = "would recommend" if r["would_recommend"] else "would not recommend"
            text = f": {_clip(r['text'])}" if r["text"] else ""
            events.append(
                TimelineEvent(
                    r["at"],
                    "recommendation",
                    vid,
                    r["id"],
                    verdict + text,
                    {"would_recommend": bool(r["would_recommend"])},
                )
            )
        for r in q("SELECT * FROM issues WHERE vendor_id = ?", [vid]):
            events.append(
                TimelineEvent(
                    r["opened_at"],
                    "issue_opened",
                    vid,
                    r["id"],
                    f"opened issue #{r['id']}: {_clip(r['title'])}",
                    {"issue_id": r["id"]},
                )
            )
            if r["resolved_at"] is not None:
                events.append(
                    TimelineEvent(
                        r["resolved_at"],
                        "issue_resolved",
                        vid,
                        r["id"],
                        f"resolved issue #{r['id']}",
                        {"issue_id": r["id"]},
                    )
                )
        for r in q(
            "SELECT r.* FROM issue_replies r JOIN issues i ON i.id = r.issue_id WHERE i.vendor_id = ?", [vid]
        ):
            who = "the vendor replied" if r["author"] == "vendor" else "I replied"
            events.append(
                TimelineEvent(
                    r["at"],
                    "reply",
                    vid,
                    r["id"],
                    f"{who} on issue #{r['issue_id']}: {_clip(r['text'])}",
                    {"issue_id": r["issue_id"], "author": r["author"]},
                )
            )
        events.sort(key=lambda e: (e.at, _EVENT_ORDER[e.kind], e.ref_id), reverse=True)
        return events


def _clip(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
