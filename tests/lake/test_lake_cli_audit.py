"""`tracework lake query` reads personal data: each run lands in the audit log."""

from __future__ import annotations

from click.testing import CliRunner

from tracework import events as ev
from tracework.cli import cli
from tracework.governance import open_governance
from tracework.lake import LakeWriter
from tracework.lake.layout import RAW_EVENTS_SCHEMA


def _audit_actions(data_dir) -> list[tuple[str, str, dict]]:
    gov = open_governance(data_dir)
    try:
        return [(e.action, e.subject, e.details) for e in gov.audit.entries()]
    finally:
        gov.close()


def test_lake_query_is_audited_with_sql_and_row_count_only(tmp_path):
    import time

    import pyarrow as pa

    t0 = time.time_ns()
    table = ev.events_to_table([ev.MouseMove(seq=i, t_ns=t0 + i, session="s1", x=i, y=i) for i in range(3)])
    extra = {
        "person": pa.array(["p_test"] * 3), "device": pa.array(["d_test"] * 3),
        "batch_id": pa.array(["batch-0001"] * 3), "received_ns": pa.array([t0] * 3, pa.int64()),
        "day": pa.array([time.strftime("%Y-%m-%d", time.gmtime(t0 / 1e9))] * 3),
    }
    for name, column in extra.items():
        table = table.append_column(name, column)
    LakeWriter(tmp_path).append(table.select(RAW_EVENTS_SCHEMA.names).cast(RAW_EVENTS_SCHEMA))
    before = _audit_actions(tmp_path)

    result = CliRunner().invoke(cli, ["lake", "query", "--data-dir", str(tmp_path), "--json",
                                      "SELECT x FROM events ORDER BY x"])
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line] == ['{"x": 0}', '{"x": 1}', '{"x": 2}']

    after = _audit_actions(tmp_path)
    assert len(after) == len(before) + 1
    action, subject, details = after[-1]
    assert (action, subject) == ("data.access", "lake.events")
    assert details["sql"] == "SELECT x FROM events ORDER BY x" and details["rows"] == 3
    assert "p_test" not in str(after[-1])
