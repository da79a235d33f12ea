"""The stream benchmark's second-by-second latency timeline."""

from benchmarks.stream_timeline import timeline


def test_a_slow_second_shows_in_its_own_bucket():
    # 3 seconds of sends, 2 per second; the messages sent in second 1 took 900 ms, the others 100 ms.
    sends = [0.0, 500.0, 1000.0, 1500.0, 2000.0, 2500.0]
    lat = [100.0, 100.0, 900.0, 900.0, 100.0, 100.0]
    pairs = [(s, s + d) for s, d in zip(sends, lat, strict=True)]
    writes = sorted(w for _, w in pairs)
    rows = timeline(pairs, sends, writes)
    assert [r["sent"] for r in rows] == [2, 2, 2]
    assert [r["p99_ms"] for r in rows] == [100.0, 900.0, 100.0]
    # At the end of second 1 (t=2000 ms) the two slow ones (written at 1900 and 2400) - one is still out,
    # and the one sent at 2000 is not yet written.
    assert rows[1]["backlog"] == 2


def test_unlanded_messages_count_as_sent_but_have_no_latency():
    rows = timeline([], [0.0, 10.0], [])
    assert rows == [{"s": 0.0, "sent": 2, "p50_ms": None, "p99_ms": None, "max_ms": None, "backlog": 2}]
