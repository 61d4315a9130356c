"""The whole pipeline on Beam's portable runner: a local job service and SDK workers in separate
processes (an external worker pool), as Flink, Spark and Dataflow Runner v2 run Beam Python; its
instances must be the DirectRunner's, row for row."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time

import pyarrow.dataset as ds
import pytest

from linkbert.cli import main as linkbert


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("localhost", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


@pytest.fixture
def portable_services(tmp_path):
    """(job endpoint, worker pool address): a local job service and an external worker pool whose
    SDK harnesses are child processes; both stopped afterwards."""
    job_port, pool_port = _free_port(), _free_port()
    commands = [
        [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", f"--port={job_port}"],
        [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={pool_port}"],
    ]
    # The worker pool starts each SDK harness as a bare `python`: this interpreter's, through PATH.
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"}
    logs = [tmp_path / "job_service.log", tmp_path / "worker_pool.log"]
    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("wb"), env=env)
                 for command, log in zip(commands, logs)]
    try:
        _wait_for_port(job_port, processes[0], logs[0])
        _wait_for_port(pool_port, processes[1], logs[1])
        yield f"localhost:{job_port}", f"localhost:{pool_port}"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _instances(directory) -> list[dict]:
    rows = ds.dataset(f"{directory}/instances").to_table().to_pylist()
    return sorted(rows, key=lambda row: (row["round"], row["doc_a"], row["seg_a"]))


@pytest.mark.slow
def test_portable_runner_with_external_worker_processes_gives_the_direct_runners_instances(tmp_path, portable_services):
    job_endpoint, worker_pool = portable_services
    corpus = tmp_path / "corpus"
    assert linkbert(["synth", "wiki", "--docs", "40", "--seed", "5", "--out", str(corpus)]) == 0
    common = ["pipeline", "--source", "wikipedia", "--input", f"{corpus}/*.xml.bz2", "--vocab-size", "1500",
              "--heldout-fraction", "0.1", "--segment-tokens", "32", "--max-seq-len", "64", "--links", "tfidf"]
    assert linkbert([*common, "--output", str(tmp_path / "direct")]) == 0
    assert linkbert([*common, "--output", str(tmp_path / "portable"), "--runner=PortableRunner",
                     f"--job_endpoint={job_endpoint}", "--environment_type=EXTERNAL",
                     f"--environment_config={worker_pool}",
                     "--job_server_timeout=3600"]) == 0  # the job state stream's gRPC deadline (60 s by default)

    direct, portable = _instances(tmp_path / "direct"), _instances(tmp_path / "portable")
    assert len(direct) > 100 and portable == direct
    for directory in ("direct", "portable"):
        manifest = json.loads((tmp_path / directory / "manifest.json").read_text())
        assert manifest["tfidf"]["vectorizer"] == {"max_df": 0.5, "min_df": 2, "stop_words": "english",
                                                   "sublinear_tf": True}
    direct_manifest = json.loads((tmp_path / "direct" / "manifest.json").read_text())
    portable_manifest = json.loads((tmp_path / "portable" / "manifest.json").read_text())
    assert portable_manifest["tables"] == direct_manifest["tables"] and portable_manifest["splits"] == direct_manifest["splits"]


def test_full_pipeline_translates_for_dataflow_offline(tmp_path, monkeypatch):
    """DataflowRunner's own translation (``--dry_run``, no network, no credentials) of the whole
    pipeline: every stage present, no local path, every DoFn unpickles, the SDK image honoured.
    Needs the ``dataflow`` extra, which ``make test`` installs (pyproject's ``dataflow`` extra)."""
    try:
        from apache_beam.runners.dataflow import dataflow_runner  # noqa: F401
        from apache_beam.runners.dataflow.internal import apiclient
    except ImportError as exc:  # not a skip: the check is part of the suite
        raise AssertionError(f"install the dataflow extra (pip install -e '.[dataflow]'): {exc}") from exc
    assert apiclient is not None, "apache-beam[gcp] is not installed: pip install -e '.[dataflow]'"
    import apache_beam as beam
    import cloudpickle
    from apache_beam.internal import pickler
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.portability.api import beam_runner_api_pb2

    from linkbert.pipeline.run import build_pipeline, parse_config

    monkeypatch.chdir(tmp_path)
    image = "us-central1-docker.pkg.dev/linkbert-test/linkbert/beam-worker:2.78.0"
    config, beam_args = parse_config([
        "--source", "wikipedia", "--input", "gs://linkbert-test/enwiki/*multistream*.xml.bz2",
        "--output", "gs://linkbert-test/out", "--links", "tfidf",
        "--runner=DataflowRunner", "--project=linkbert-test", "--region=us-central1",
        "--temp_location=gs://linkbert-test/tmp", "--staging_location=gs://linkbert-test/staging",
        "--machine_type=n2-standard-8", "--max_num_workers=50", f"--sdk_container_image={image}",
        "--sdk_location=container", "--dry_run=True", "--no_auth",
    ])
    pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
    build_pipeline(pipeline, config)
    result = pipeline.run()
    proto = pipeline.runner.proto_pipeline
    stages = {transform.unique_name.split("/")[0] for transform in proto.components.transforms.values()}
    assert {"ReadWikipedia", "Tokenizer", "TfidfEdges", "Segment", "Pair", "SplitHeldout", "WriteDocuments",
            "WriteEdges", "WriteSegments", "WriteTrain", "WriteHeldout", "WriteErrors", "WriteManifest"} <= stages
    environments = list(proto.components.environments.values())
    assert [environment.urn for environment in environments] == ["beam:env:docker:v1"]
    assert beam_runner_api_pb2.DockerPayload.FromString(environments[0].payload).container_image == image
    # What the workers get: every DoFn, unpickled and pickled again uncompressed to look for paths
    # (the runner's own staged artifacts, such as pickled_main_session, are local files it uploads).
    dofns = []
    for transform in proto.components.transforms.values():
        if transform.spec.urn == "beam:transform:pardo:v1":
            payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
            if payload.do_fn.urn == "beam:dofn:pickled_python_info:v1":
                dofns.append(cloudpickle.dumps(pickler.loads(payload.do_fn.payload)))
    assert len(dofns) > 50
    serialized = b"".join(dofns) + str(result.job.proto).encode()
    # cloudpickle records the source file of pickled lambdas: this checkout's own paths are not data paths
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__))).encode()
    leaks = sorted(set(re.findall(rb".{60}/tmp/[^\x00-\x20]{0,60}", serialized.replace(checkout, b"<checkout>"), re.S)))[:3]
    assert str(tmp_path).encode() not in serialized and not leaks, leaks
    assert b"gs://linkbert-test/out" in serialized


def test_a_runner_without_metrics_is_not_a_lost_run(tmp_path, monkeypatch, capsys):
    from linkbert.pipeline import run as run_module

    monkeypatch.setattr(run_module, "collect_counters", lambda result: {})
    corpus = tmp_path / "corpus"
    assert linkbert(["synth", "wiki", "--docs", "12", "--seed", "1", "--out", str(corpus)]) == 0
    status = linkbert(["pipeline", "--source", "wikipedia", "--input", f"{corpus}/*.xml.bz2", "--output",
                       str(tmp_path / "out"), "--vocab-size", "500", "--segment-tokens", "32", "--max-seq-len", "64"])
    assert status == 0
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["source_reconciled"] is None
    assert "counters not available on this runner (DirectRunner)" in capsys.readouterr().out


def test_multistream_dump_without_index_warns_with_the_remedy(tmp_path, caplog):
    from linkbert.pipeline.sources.multistream import plan_units

    dump = tmp_path / "enwiki-20260101-pages-articles-multistream.xml.bz2"
    dump.write_bytes(b"")
    with caplog.at_level("WARNING"):
        units = plan_units(str(dump), None)
    assert len(units) == 1
    assert f"{tmp_path}/enwiki-20260101-pages-articles-multistream-index.txt.bz2" in caplog.text
    assert "ONE work unit" in caplog.text and "--build-wiki-index" in caplog.text
