"""Aggregate statistics released only for groups of at least k people.

Groups (teams) with fewer than ``k_anonymity`` people (default 5, as
workplace-analytics products do) are returned as
``{"team": ..., "suppressed": true, "reason": "fewer than 5 people"}`` with no
figures. Totals add up released groups only, so a total minus the released
groups never reveals a suppressed one.
"""

from __future__ import annotations

from collections import defaultdict


from .roles import Principal


def activity_stats(gov, principal: Principal) -> dict:
    """Events and active people per team from the raw lake, k-anonymous."""
    from ..lake import read_events

    gov.authorize(principal, "stats.read")
    k = int(gov.policy()["k_anonymity"])
    table = read_events(gov.data_dir, columns=["person", "type"])
    team_of = gov.team_of_pseudonyms()
    per_person = table.group_by("person").aggregate([("type", "count")]) if table.num_rows else None
    teams: dict[str, dict] = defaultdict(lambda: {"people": 0, "events": 0})
    if per_person is not None:
        for person, count in zip(per_person["person"].to_pylist(), per_person["type_count"].to_pylist()):
            team = team_of.get(person, "unregistered")
            teams[team]["people"] += 1
            teams[team]["events"] += int(count)
    groups, total_people, total_events = [], 0, 0
    for team in sorted(teams):
        t = teams[team]
        if t["people"] < k:
            groups.append({"team": team, "suppressed": True, "reason": f"fewer than {k} people"})
            continue
        groups.append({"team": team, "suppressed": False, "people": t["people"], "events": t["events"]})
        total_people += t["people"]
        total_events += t["events"]
    gov.audit.append(gov.actor(principal), "stats.read", "activity", {"k": k})
    return {"k": k, "groups": groups, "released_total": {"people": total_people, "events": total_events}}
