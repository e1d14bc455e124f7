"""Erasure against a batch already in flight (issue 6, Requests).

A batch that passed the collector's consent check just before an erasure
withdrew the person's consent is still committed afterwards: the collector
groups accepted batches for up to ``collector.commit_interval_ms`` before the
lake commit. The erasure must wait for such batches and remove them too, so
the report says ``verified`` and no row of the person is left once it returns.

Real parts: a collector subprocess on 127.0.0.1 with consent enforced and a
long commit interval (1.5 s) that makes the in-flight window wide and certain;
the erasure runs in this process on the same data folder, as
``tracework privacy request erase`` does.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))
from collector_helpers import headers, make_batch, make_events  # noqa: E402

from tracework.governance import open_governance, operator  # noqa: E402
from tracework.governance.requests import erase_person  # noqa: E402
from tracework.lake import read_events  # noqa: E402

COMMIT_INTERVAL_MS = 1500


def _queued_rows(url: str) -> float:
    """Rows accepted by the collector (consent checked) and not yet committed."""
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith("tracework_writer_queue_rows "):
            return float(line.split()[1])
    raise AssertionError("the collector's /metrics has no tracework_writer_queue_rows")


def _rows_of(data_dir: Path, pseudonyms: list[str]) -> int:
    table = read_events(data_dir)
    if table is None or table.num_rows == 0:
        return 0
    return int(pc.sum(pc.is_in(table["person"], value_set=pa.array(pseudonyms))).as_py() or 0)


def test_erasure_waits_for_a_batch_accepted_before_the_withdrawal(collector):
    c = collector(require_consent=True, env={"TRACEWORK_COLLECTOR_COMMIT_INTERVAL_MS": str(COMMIT_INTERVAL_MS)})
    erin = c.enroll("erin@example.org")
    olga = c.enroll("olga@example.org")
    with httpx.Client(timeout=30) as client:
        for token, session in ((erin, "erin-1"), (olga, "olga-1")):
            _, body = make_batch(make_events(200, session=session))
            assert client.post(c.url + "/v1/batches", content=body, headers=headers(token)).status_code == 200

    # Erin's next batch: accepted (consent checked) and waiting for its commit.
    in_flight: dict = {}
    _, body = make_batch(make_events(300, session="erin-2"))

    def post_in_flight():
        r = httpx.post(c.url + "/v1/batches", content=body, headers=headers(erin), timeout=30)
        in_flight["status"], in_flight["done_at"] = r.status_code, time.monotonic()

    poster = threading.Thread(target=post_in_flight)
    poster.start()
    deadline = time.monotonic() + 10
    while _queued_rows(c.url) < 300:
        assert time.monotonic() < deadline, "the in-flight batch never reached the writer queue"
        time.sleep(0.01)

    gov = open_governance(c.data_dir)
    pseudonyms = gov.pseudonyms("erin@example.org")
    erase_started = time.monotonic()
    report = erase_person(gov, operator("test"), "erin@example.org",
                          settle_s=2 * COMMIT_INTERVAL_MS / 1000 + 0.25)
    poster.join(30)

    # The batch was accepted before the withdrawal and became durable during the erasure.
    assert in_flight["status"] == 200
    assert erase_started < in_flight["done_at"]
    assert report.verified, report.remaining
    assert report.consent_withdrawn and report.raw_rows_deleted == 200 + 300
    assert _rows_of(c.data_dir, pseudonyms) == 0
    assert _rows_of(c.data_dir, gov.pseudonyms("olga@example.org")) == 200

    # Nothing new from Erin gets in after the erasure: her device was revoked
    # (before the consent check is even reached).
    _, body = make_batch(make_events(10, session="erin-3"))
    r = httpx.post(c.url + "/v1/batches", content=body, headers=headers(erin), timeout=30)
    assert r.status_code == 401 and r.json()["error"]["code"] == "revoked_token"
    assert _rows_of(c.data_dir, pseudonyms) == 0

