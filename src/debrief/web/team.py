"""The team page's chart: the team's fixes per base, week by week, as inline SVG (no script).

Pure: history entries in, markup out. Each week (ISO weeks, Monday first) is a column of stacked
bars, one colour per base, the same colours as `debrief report`; calls with nothing to fix are
counted in the caption, calls with not enough to coach nowhere (rule 7).
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from debrief.playbook import Playbook, base_name
from debrief.report import BASE_COLOURS, not_enough_to_coach
from debrief.store import Entry

BAR_W, GAP, HEIGHT, TOP = 34, 14, 160, 20


@dataclass(frozen=True)
class Week:
    monday: date
    fixes: Counter  # base id -> calls whose fix was on it
    clean: int      # calls with nothing to fix


def weeks(entries: list[Entry], playbook: Playbook) -> list[Week]:
    """Every week from the first analyzed call to the last, empty weeks included."""
    base_of = {step.id: step.base for step in playbook.steps}
    counted: dict[date, Week] = {}
    for entry in entries:
        when = (entry.recorded_at or entry.added_at or "")[:10]
        if entry.status != "done" or not_enough_to_coach(entry) or not when:
            continue
        try:
            day = date.fromisoformat(when)
        except ValueError:
            continue
        monday = day - timedelta(days=day.weekday())
        week = counted.setdefault(monday, Week(monday, Counter(), 0))
        if entry.fix:
            week.fixes[base_of.get(entry.fix, entry.fix.split(".")[0])] += 1
        else:
            counted[monday] = Week(monday, week.fixes, week.clean + 1)
    if not counted:
        return []
    first, last = min(counted), max(counted)
    span = [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]
    return [counted.get(monday, Week(monday, Counter(), 0)) for monday in span]


def weekly_chart(entries: list[Entry], playbook: Playbook) -> str:
    """The chart's markup (an <svg> with a title per bar), or "" when there is nothing to draw."""
    found = weeks(entries, playbook)
    if not found:
        return ""
    bases = [b.id for b in playbook.bases]
    most = max((sum(w.fixes.values()) for w in found), default=0) or 1
    width = len(found) * (BAR_W + GAP) + GAP
    parts = []
    for index, week in enumerate(found):
        x, y = GAP + index * (BAR_W + GAP), TOP + HEIGHT
        for base in bases:
            count = week.fixes[base]
            if not count:
                continue
            tall = HEIGHT * count / most
            y -= tall
            label = f"week of {week.monday}: {count} fix{'es' * (count != 1)} on {base_name(base)}"
            parts.append(f'<rect class="fixes" data-week="{week.monday}" data-base="{_e(base)}" data-count="{count}" '
                         f'x="{x}" y="{y:.1f}" width="{BAR_W}" height="{tall:.1f}" '
                         f'fill="{BASE_COLOURS.get(base, "#888")}"><title>{_e(label)}</title></rect>')
        total = sum(week.fixes.values())
        parts.append(f'<text x="{x + BAR_W / 2}" y="{TOP + HEIGHT + 16}" text-anchor="middle">'
                     f'{week.monday.strftime("%d %b")}</text>')
        if total:
            parts.append(f'<text x="{x + BAR_W / 2}" y="{y - 4:.1f}" text-anchor="middle">{total}</text>')
    clean = sum(w.clean for w in found)
    caption = (f"The team's steps to fix per base, week by week ({len(found)} week{'s' * (len(found) != 1)}; "
               f"{clean} call{'s' * (clean != 1)} with nothing to fix not drawn)")
    return (f'<figure class="team-chart"><svg role="img" aria-label="{_e(caption)}" width="{width}" '
            f'height="{TOP + HEIGHT + 24}" viewBox="0 0 {width} {TOP + HEIGHT + 24}" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
            f'<figcaption>{_e(caption)}</figcaption></figure>')


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
