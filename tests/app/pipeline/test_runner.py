import time

import numpy as np

from app.capture import open_source
from app.config import PipelineConfig
from app.pipeline.runner import Pipeline, StageSpec


def run(source, stages, cfg=None, taps=()):
    specs = [StageSpec(s.name, s, taps=taps if i == len(stages) - 1 else ()) for i, s in enumerate(stages)]
    p = Pipeline(source, specs, cfg or PipelineConfig())
    p.start()
    assert p.join(30), "pipeline did not finish"
    return p


def test_paced_file_source_processes_every_frame_and_keeps_ids_and_times(tmp_path, kit):
    rec = kit.write_recording(tmp_path / "rec", 25)
    fast, slow = kit.Recorder("fast"), kit.Recorder("slow", sleep_s=0.01)
    out = []
    with open_source(f"recording:{rec}") as src:
        p = run(src, [fast, slow], taps=(out.append,))
    assert fast.seen == slow.seen == list(range(25))
    assert [q.frame_id for q in out] == list(range(25))
    assert [q.frame.t_capture_ns for q in out] == [kit.make_frame(i).t_capture_ns for i in range(25)]
    for q in out:
        assert int(q.frame.left[0, 0, 0]) == q.frame_id  # the pixels travelled with their id
        assert [t.stage for t in q.times] == ["capture", "fast", "slow"]
        ends = [q.t_origin_ns] + [t.end_ns for t in q.times[1:]]
        assert all(a <= b for a, b in zip(ends, ends[1:], strict=False))
    report = p.report()
    assert report.frames == report.frames_read == 25
    assert report.end_reason == "end of the source" and report.error is None
    assert all(s.dropped == 0 for s in report.stages)
    assert fast.finished and slow.finished


def test_live_source_drops_stale_frames_and_counts_them(kit):
    feed = kit.LiveFeed(80, period_s=0.002)
    slow = kit.Recorder("slow", sleep_s=0.02)
    p = run(feed, [slow], PipelineConfig(max_in_flight=0))  # no admission limit: the mailbox drops
    assert not p.paced and p.boxes[0].high_water == 1
    report = {s.name: s for s in p.report().stages}
    assert report["slow"].dropped > 0
    assert report["slow"].processed + report["slow"].dropped == p.capture.frames_read == 80
    assert slow.seen == sorted(set(slow.seen)) and slow.seen[-1] == 79  # newest frames win, order kept


def test_live_latency_starts_at_the_capture_time(kit):
    out = []
    run(kit.LiveFeed(5), [kit.Recorder("a")], taps=(out.append,))
    assert [q.t_origin_ns for q in out] == [q.frame.t_capture_ns for q in out]


def test_realtime_file_source_runs_latest_wins(tmp_path, kit):
    rec = kit.write_recording(tmp_path / "rec", 6)
    with open_source(f"recording:{rec}") as src:
        p = run(src, [kit.Recorder("a")], PipelineConfig(realtime=True))
    assert not p.paced and p.boxes[0].drop_stale and p.capture.pacer is not None
    assert p.report().frames_read == 6


def test_stage_exception_shuts_everything_down_cleanly(tmp_path, kit):
    rec = kit.write_recording(tmp_path / "rec", 40)
    a, b, c = kit.Recorder("a"), kit.Recorder("b", fail_at=5), kit.Recorder("c")
    with open_source(f"recording:{rec}") as src:
        p = run(src, [a, b, c])
    assert p.error == "b: b cannot handle frame 5"
    assert p.end_reason() == "error in b"
    assert not p.alive() and a.finished and b.finished and c.finished
    assert c.seen == list(range(5))
    assert p.capture.frames_read < 40  # the reader stopped instead of reading the whole file


def test_camera_loss_ends_the_pipeline_with_the_capture_error(kit):
    feed = kit.LiveFeed(100, fail_at=10)
    sink = kit.Recorder("sink")
    p = run(feed, [sink])
    assert p.error.startswith("capture: feed: 50 reads in a row failed")
    assert sink.finished and max(sink.seen) <= 9


def test_stop_request_ends_a_live_run(kit):
    sink = kit.Recorder("sink")
    p = Pipeline(kit.LiveFeed(10**6), [StageSpec("sink", sink)], PipelineConfig())
    p.start()
    while len(sink.seen) < 3:
        time.sleep(0.005)
    p.stop("window closed")
    assert p.join(10)
    assert p.end_reason() == "window closed" and sink.finished and p.error is None


def test_max_frames(tmp_path, kit):
    rec = kit.write_recording(tmp_path / "rec", 20)
    sink = kit.Recorder("sink")
    with open_source(f"recording:{rec}") as src:
        p = run(src, [sink], PipelineConfig(max_frames=7))
    assert sink.seen == list(range(7)) and p.report().end_reason == "--max-frames 7 reached"


def test_report_latency_and_fps_are_measured(tmp_path, kit):
    rec = kit.write_recording(tmp_path / "rec", 10)
    with open_source(f"recording:{rec}") as src:
        report = run(src, [kit.Recorder("a", sleep_s=0.002)]).report()
    assert report.latency.n == 10 and np.isfinite(report.latency.p95_ms) and report.fps > 0
    assert {s.name for s in report.stages} == {"capture", "a"}


def test_report_can_leave_warm_up_frames_out(tmp_path, kit):
    rec = kit.write_recording(tmp_path / "rec", 10)
    with open_source(f"recording:{rec}") as src:
        p = run(src, [kit.Recorder("a")])
    full, warm = p.report(), p.report(warmup=3)
    assert (full.warmup, warm.warmup) == (0, 3) and warm.frames == full.frames == 10
    assert warm.latency.n == 7 and {s.name: s.latency.n for s in warm.stages} == {"capture": 7, "a": 7}
    assert p.report(warmup=9).warmup == 0  # too few frames left: nothing is skipped


class InFlightProbe:
    """A stage that notes how many frames the pipeline's admission had let in while it worked."""

    def __init__(self, name, sleep_s=0.003):
        self.name, self.sleep_s, self.pipeline, self.in_flight, self.seen = name, sleep_s, None, [], []

    def process(self, packet):
        self.in_flight.append(self.pipeline.admission.in_flight)
        self.seen.append(packet.frame_id)
        time.sleep(self.sleep_s)
        return packet


def probe_run(source, cfg, n_stages=3):
    probes = [InFlightProbe(f"s{i}") for i in range(n_stages)]
    p = Pipeline(source, [StageSpec(q.name, q) for q in probes], cfg)
    for q in probes:
        q.pipeline = p
    p.start()
    assert p.join(30), "pipeline did not finish"
    return p, probes


def test_paced_admission_bounds_frames_in_flight_and_keeps_every_frame(tmp_path, kit):
    rec = kit.write_recording(tmp_path / "rec", 30)
    with open_source(f"recording:{rec}") as src:
        p, probes = probe_run(src, PipelineConfig(max_in_flight=2))
    assert all(q.seen == list(range(30)) for q in probes)
    assert max(max(q.in_flight) for q in probes) == 2 and p.admission.in_flight == 0
    with open_source(f"recording:{rec}") as src:
        _, unbounded = probe_run(src, PipelineConfig(max_in_flight=0))
    assert max(max(q.in_flight) for q in unbounded) > 2  # without it every stage and box holds a frame


def test_live_admission_skips_frames_and_counts_them_at_capture(kit):
    p, probes = probe_run(kit.LiveFeed(60, period_s=0.002), PipelineConfig(max_in_flight=1))
    report = {s.name: s for s in p.report().stages}
    assert max(max(q.in_flight) for q in probes) == 1
    assert report["capture"].dropped == p.admission.skipped > 0
    assert report["s2"].processed + p.admission.skipped + sum(report[f"s{i}"].dropped for i in range(3)) == 60
    assert probes[2].seen == sorted(probes[2].seen)


def test_stop_wakes_a_reader_waiting_for_admission(tmp_path, kit):
    rec = kit.write_recording(tmp_path / "rec", 200)
    with open_source(f"recording:{rec}") as src:
        stuck = kit.Recorder("stuck", sleep_s=0.05)
        p = Pipeline(src, [StageSpec("stuck", stuck)], PipelineConfig(max_in_flight=1))
        p.start()
        while not stuck.seen:
            time.sleep(0.005)
        p.stop("window closed")
        assert p.join(10) and p.end_reason() == "window closed" and p.capture.frames_read < 200
