"""Rolling upgrades: today's agent uploads without loss to older collectors.

During an upgrade a fleet runs collectors of several ages. For each old
collector that matters, its source is exported from git history
(``git archive REV src``), it runs as a real process on 127.0.0.1 with
``PYTHONPATH`` pointing at that source, a device is enrolled (and consent
granted, where that revision enforces it) with that revision's own CLI, and
TODAY's uploader (real spool, real HTTP) sends a realistic mix of events. The
lake the old collector wrote must hold every event exactly once with the
values the agent spooled, and a resent batch must not be stored twice.

* ``6f54c58``: the last collector before Arrow batches (NDJSON only). It
  answers 415 to an Arrow body; the uploader must resend the same batch as
  NDJSON and keep to NDJSON.
* ``8a38844``: the first collector that accepted Arrow batches, written before
  the encoder began leaving out columns that are null in every row ("slim"
  batches, 71441b1). Its decoder must read a missing column as all null; the
  test checks that the batches really left columns out.

A clone without that history (shallow) skips, naming the missing revision.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import deltalake
import httpx
import pyarrow as pa
import pytest
import zstandard

from tracework.agent.spool import Spool
from tracework.agent.uploader import Uploader, UploadSettings, encode_for_wire
from tracework.events import (
    EVENT_TAGS,
    Active,
    ButtonDown,
    ButtonUp,
    FocusChange,
    Idle,
    KeyDown,
    KeyUp,
    MouseMove,
    Pause,
    Resume,
    Scroll,
    SessionEnd,
    SessionStart,
    Transform,
    events_to_table,
    table_to_events,
)
from tracework.events.arrow_wire import ARROW_CONTENT_TYPE
from tracework.events.columns import EVENT_FIELDS, EVENT_SCHEMA

sys.path.insert(0, str(Path(__file__).resolve().parent))
from old_collectors import OldCollector, OldCollectorProcess, export_source  # noqa: E402

pytestmark = pytest.mark.timeout(180)

BATCH_EVENTS = 64  # small batches: some hold only moves, so most columns are left out of them


OLD_COLLECTORS = [
    pytest.param(OldCollector("6f54c58", stores_as="ndjson", enforces_consent=False), id="6f54c58-ndjson-only"),
    pytest.param(OldCollector("8a38844", stores_as="arrow", enforces_consent=True), id="8a38844-arrow-before-slim"),
]


@pytest.fixture(params=OLD_COLLECTORS)
def old_collector(request, tmp_path):
    old: OldCollector = request.param
    src = export_source(old.rev, tmp_path / f"old-{old.rev}")
    data_dir = tmp_path / "collector-data"
    data_dir.mkdir()
    process = OldCollectorProcess(old, src, data_dir)
    # The old code, not this checkout's, is what the subprocesses import.
    imported = process.run("-c", "import tracework.collector.app as m; print(m.__file__)").strip()
    assert Path(imported).is_relative_to(src), imported
    token = process.enroll("alice")
    process.start()
    yield process, token
    process.stop()


def realistic_events(t0: int) -> list:
    """Two capture sessions as an agent spools them: session start with its
    transforms, focus changes (titles with non-ASCII text, one at the title
    length limit, a browser URL, a denied window), typing with modifiers and
    redacted spans (key class and placeholder only), moves (a long run of them
    fills whole batches), clicks, scrolls, idle/active, pause/resume, session end;
    then one batch per event type."""
    rng = random.Random(20261207)
    out: list = []
    t = t0

    def add(event_type, **fields):
        nonlocal t
        t += rng.randrange(1_000_000, 40_000_000)
        out.append(event_type(seq=0, t_ns=t, session=session, **fields))

    def moves(n: int, x: int, y: int) -> tuple[int, int]:
        for _ in range(n):
            x, y = x + rng.randrange(-9, 10), y + rng.randrange(-9, 10)
            add(MouseMove, x=x, y=y)
        return x, y

    def typing(text: str, modifiers: int = 0) -> None:
        for ch in text:
            code = 10 + ord(ch) % 80
            add(KeyDown, key_code=code, key_sym=ch if ch.isalnum() else "punct", char=ch, modifiers=modifiers)
            add(KeyUp, key_code=code, key_sym=ch if ch.isalnum() else "punct", char=ch, modifiers=modifiers)

    def redacted(kinds: str, placeholder: str) -> None:
        for key_class in kinds:
            cls = {"l": "letter", "d": "digit", "p": "punct"}[key_class]
            add(KeyDown, key_class=cls, redacted=placeholder)
            add(KeyUp, key_class=cls, redacted=placeholder)

    long_title = ("Rechnung Müller – Übersicht 📄 " * 80)[:2048]  # 2,048 characters, more bytes
    transforms = [Transform(name="redaction", params={"detectors": "default", "keep_key_class": True}),
                  Transform(name="cursor_resample", params={"rate_hz_min": 60, "rate_hz_max": 125, "blend": 0.5})]
    for session in ("compat-morning", "compat-afternoon"):
        add(SessionStart, platform="linux-x11", screen_w=2560, screen_h=1440, agent_version="0.1.0",
            transforms=transforms)
        add(FocusChange, app="org.gnome.Evince", title=long_title, window_id=0x3A00007, win_x=-1280, win_y=0,
            win_w=1280, win_h=1024)
        x, y = moves(90, 600, 400)  # more than a batch of moves only
        add(ButtonDown, x=x, y=y, button="left")
        add(ButtonUp, x=x, y=y, button="left")
        add(FocusChange, app="firefox", title="Sign in – Mail ✉", url="https://mail.example.org/login?next=%2Finbox",
            window_id=0x4200003, win_x=0, win_y=0, win_w=2560, win_h=1400)
        typing("hello, Zoë", modifiers=0)
        redacted("llllplllllllpllp", "EMAIL")
        typing("\t")
        redacted("lldldllpd", "PASSWORD")
        typing("\n")
        x, y = moves(25, x, y)
        add(Scroll, x=x, y=y, dy=-3)
        add(Scroll, x=x, y=y, dx=2, modifiers=1)
        add(ButtonDown, x=x, y=y, button="right", modifiers=2 | 1)
        add(ButtonUp, x=x, y=y, button="right", modifiers=2 | 1)
        add(FocusChange, denied=True, window_id=0x5000001)
        add(KeyDown, key_class="letter")  # identity removed while a denied window has focus
        add(KeyUp, key_class="letter")
        add(Idle, idle_ms=300_000)
        add(Active)
        add(Pause, reason="hotkey")
        add(Resume, reason="hotkey")
        add(FocusChange, app="xterm", title="alice@host: ~/src — vim résumé.md", window_id=0x1C00002)
        typing("Wq!", modifiers=1)
        x, y = moves(12, x, y)
        add(SessionEnd, reason="stop")

    # Then batches of one event type each (after moves up to a batch
    # boundary): the slimmest bodies, every column of the other types left out.
    session = "compat-one-type-per-batch"
    moves(-len(out) % BATCH_EVENTS, 10, 10)
    one_type = [
        lambda i: add(SessionStart, platform="linux-x11", screen_w=1920, screen_h=1080, agent_version="0.1.0"),
        lambda i: add(KeyDown, key_class="digit", redacted="CREDIT_CARD"),
        lambda i: add(KeyUp, key_code=38, key_sym="a", char="a", modifiers=i % 4),
        lambda i: add(MouseMove, x=-i, y=i),
        lambda i: add(ButtonDown, x=i, y=2 * i, button="middle"),
        lambda i: add(ButtonUp, x=i, y=2 * i, button="x1", modifiers=8),
        lambda i: add(Scroll, x=i, y=i, dy=i % 5 - 2),
        lambda i: add(FocusChange, app="libreoffice", title=f"Tabelle {i} – Größe.ods"),
        lambda i: add(Idle, idle_ms=60_000 + i),
        lambda i: add(Active),
        lambda i: add(Pause, reason="spool_full"),
        lambda i: add(Resume, reason="spool_full"),
        lambda i: add(SessionEnd, reason="signal"),
    ]
    for make in one_type:
        for i in range(BATCH_EVENTS):
            make(i)
    return out


def arrow_body(batch) -> pa.Table:
    """Today's Arrow body of ``batch``, as the wire carries it."""
    body, content_type = encode_for_wire(batch, "arrow")
    assert content_type == ARROW_CONTENT_TYPE
    return pa.ipc.open_stream(zstandard.ZstdDecompressor().decompress(body)).read_all()


def left_out_columns(body: pa.Table) -> set[str]:
    """Columns of EVENT_SCHEMA that an Arrow body leaves out."""
    return set(EVENT_FIELDS) - set(body.column_names)


def new_uploader(spool: Spool, url: str, token: str) -> Uploader:
    # Default wire format (arrow), as a freshly started agent has.
    return Uploader(spool, UploadSettings(collector_url=url, token=token, batch_events=BATCH_EVENTS,
                                          backoff_base_s=0.05, backoff_cap_s=0.2, timeout_s=20))


def lake_table(data_dir: Path) -> pa.Table:
    """The old collector's lake read with plain deltalake (not this checkout's reader)."""
    table = deltalake.DeltaTable(str(data_dir / "lake" / "events")).to_pyarrow_table()
    # Dictionary-encoded string columns (if the writer made any) compared as plain strings.
    return table.cast(pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                                 for f in table.schema]))


def batches_by_format(url: str) -> dict[str, int]:
    text = httpx.get(url + "/metrics", timeout=10).text
    counts = {}
    for line in text.splitlines():
        if line.startswith("tracework_batches_by_format_total{"):
            fmt = line.split('format="', 1)[1].split('"', 1)[0]
            counts[fmt] = int(float(line.split()[-1]))
    return counts


def test_todays_uploader_loses_nothing_on_an_old_collector(old_collector, tmp_path):
    collector, token = old_collector
    old = collector.old
    spool = Spool(tmp_path / "spool.db")
    sent = realistic_events(time.time_ns() - 120 * 10**9)  # two minutes ago: inside the collector's time window
    spool.append(sent)  # assigns seq, as the agent's flusher does

    # The Arrow bodies today's agent makes of these batches leave columns out
    # (a batch of moves only leaves out nearly all of them).
    first = spool.next_batch(BATCH_EVENTS)
    left_out = left_out_columns(arrow_body(first))
    assert left_out, "the first batch sent every column: the slim encoding is not exercised"

    if old.stores_as == "ndjson":
        # What the fallback relies on: the old collector answers 415 to Arrow
        # (after the token check, before reading any event).
        body, content_type = encode_for_wire(first, "arrow")
        refused = httpx.post(collector.url + "/v1/batches", content=body, timeout=20, headers={
            "Authorization": f"Bearer {token}", "Content-Type": content_type, "Content-Encoding": "zstd"})
        assert refused.status_code == 415, refused.text
        assert refused.json()["error"]["code"] == "unsupported_content_type"

    # The first batch is delivered, then the agent "crashes" before deleting
    # its events: a restarted agent resends it under the same batch id.
    uploader = new_uploader(spool, collector.url, token)
    answer = uploader.send(first)
    assert answer["stored"] == len(first.lines) and not answer["duplicate"], answer
    assert uploader.wire_format == old.stores_as
    uploader.close()

    restarted = new_uploader(spool, collector.url, token)
    again = restarted.send(first)
    assert again["duplicate"] and again["stored"] == 0, again
    outcomes = []
    one_type_batches = set()
    while True:
        batch = spool.next_batch(BATCH_EVENTS)  # the batch upload_once sends next (it stays until acknowledged)
        if batch is None:
            break
        body = arrow_body(batch)
        left_out |= left_out_columns(body)
        types = set(body.column("type").to_pylist())
        if len(types) == 1:
            one_type_batches |= types
            # Only columns of that type are sent.
            kept = set(body.column_names)
            assert kept <= {"type", *type(sent[batch.first_seq]).__struct_fields__}, (types, kept)
        outcomes.append(restarted.upload_once())
    restarted.close()
    assert outcomes and set(outcomes) == {"sent"}, (outcomes, spool.dead_letters(), collector.log())
    assert restarted.wire_format == old.stores_as
    assert spool.pending() == (0, 0) and spool.dead_letters() == []
    # Every event type travelled alone in a batch, and every column was left
    # out of some batch that others fill: the old decoder had to read each as null.
    assert one_type_batches == set(EVENT_TAGS), one_type_batches
    assert left_out == set(EVENT_FIELDS) - {"type", "seq", "t_ns", "session"}, left_out

    if old.stores_as == "arrow":
        formats = batches_by_format(collector.url)
        assert formats.get("arrow", 0) >= 1 and formats.get("ndjson", 0) == 0, formats

    collector.stop()  # every accepted batch is committed on a clean stop
    lake = lake_table(collector.data_dir).sort_by("seq")
    sessions = {e.session for e in sent}
    assert set(lake.column("session").to_pylist()) == sessions
    seqs = lake.column("seq").to_pylist()
    assert seqs == [e.seq for e in sent], "an event is missing or stored twice"
    assert len(lake.column("batch_id").unique()) == len(outcomes)  # the resent batch once, under its id

    # Same values, field by field, as the columns today's code makes of the
    # spooled events (defaults filled), and the same events decoded back.
    expected = events_to_table(sent)
    stored = lake.select(list(EVENT_FIELDS)).cast(EVENT_SCHEMA)
    for name in EVENT_FIELDS:
        assert stored.column(name).to_pylist() == expected.column(name).to_pylist(), name
    assert table_to_events(stored) == sent
