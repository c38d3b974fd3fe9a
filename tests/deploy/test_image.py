"""The runtime image, built as its Dockerfile builds it and run as a hardened pod runs it.

There is no Docker daemon in CI, so the build stage's script (``scripts/build_image_tree.sh``)
builds the image's file tree into a temp directory, and every process is started from that tree
as UID 65534 on a read-only root filesystem (see :mod:`tests.deploy.image_tree`).
"""

from __future__ import annotations

import errno
import json
import stat
import urllib.request
from collections.abc import Iterator

import pytest

from devsupport.auth import AUTH_ENV, AUTH_HEADERS
from devsupport.ports import free_ports
from devsupport.procs import ServiceProcess
from devsupport.waiting import wait_until_blocking
from tests.deploy.image_tree import NOBODY, ImageTree, build_image_tree, image_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tree() -> Iterator[ImageTree]:
    built = build_image_tree()
    try:
        yield built
    finally:
        built.remove()


def test_the_runtime_venv_holds_no_build_or_dev_tools(tree: ImageTree) -> None:
    installed = {p.name.split("-")[0].lower() for p in tree.site_packages.glob("*.dist-info")}
    assert {"grpcio", "protobuf", "redis", "fastapi", "opentelemetry_sdk"} <= installed
    assert not installed & {"grpcio_tools", "honcho", "pip", "setuptools", "pytest", "mypy", "ruff", "mypy_protobuf"}


def test_the_app_holds_generated_code_and_only_production_packages(tree: ImageTree) -> None:
    assert sorted(p.name for p in tree.app.iterdir()) == ["gateway", "gen", "runtime", "services"]
    assert (tree.app / "gen" / "switchboard" / "status" / "v1" / "status_pb2.py").is_file()
    # Bytecode is compiled at build time: the read-only root cannot take it at run time.
    assert list((tree.app / "runtime" / "__pycache__").glob("config.*.pyc"))


def test_nobody_cannot_write_to_the_image_tree(tree: ImageTree) -> None:
    for path in (tree.app, tree.venv, tree.site_packages):
        mode = path.stat().st_mode
        assert path.stat().st_uid != NOBODY
        assert not mode & (stat.S_IWGRP | stat.S_IWOTH), path


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, headers=AUTH_HEADERS), timeout=5) as response:
        return json.loads(response.read())


def _post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json", **AUTH_HEADERS}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.timeout(240)
def test_every_process_serves_from_the_image_as_nobody_on_a_read_only_root(tree: ImageTree, redis_url: str) -> None:
    data_dir, tmp_dir = tree.volume("data"), tree.volume("tmp")
    status, media, notify, ingest, queue_admin, gateway, ami = free_ports(7)
    common = {
        "REDIS_URL": redis_url,
        "STATUS_ADDR": f"127.0.0.1:{status}",
        "MEDIA_ADDR": f"127.0.0.1:{media}",
        "NOTIFY_ADDR": f"127.0.0.1:{notify}",
        "AMI_INGEST_ADDR": f"127.0.0.1:{ingest}",
        "QUEUE_ADMIN_ADDR": f"127.0.0.1:{queue_admin}",
        "GATEWAY_PORT": str(gateway),
        "AMI_HOST": "127.0.0.1",
        "AMI_PORT": str(ami),
        "AMI_USERNAME": "image-test",  # the feed accepts this login, ami_ingest presents it
        "AMI_SECRET": "image-test-secret",
        "METRICS_PORT": "0",
        "WORKFLOW_CONCURRENCY": "2",
        **AUTH_ENV,  # the deployment's credential: services present it to each other, the test sends it
    }
    grpc_services = {
        "services.status": status,
        "services.ami_ingest": ingest,
        "services.media": media,
        "services.notify": notify,
        "services.queue_admin": queue_admin,
    }
    started: list[ServiceProcess] = []

    def start(module: str, *args: str) -> ServiceProcess:
        process = image_process(tree, "-m", module, *args, data_dir=data_dir, tmp_dir=tmp_dir, env=common)
        started.append(process)
        return process.start()

    try:
        feed = start("services.ami_ingest.simulator", "--port", str(ami))
        for module, port in grpc_services.items():
            start(module).wait_serving(f"127.0.0.1:{port}", timeout=60)
        worker = start("services.workflow.worker")
        web = start("gateway")
        web.wait_http(f"http://127.0.0.1:{gateway}/readyz", timeout=60)

        # The AMI feed reaches the status service through the ingest: live rows come back.
        wait_until_blocking(
            lambda: _get_json(f"http://127.0.0.1:{gateway}/api/queue-status/operators")["data"],
            within=60,
            what="operators from the AMI feed through ami_ingest and status",
            interval=0.2,
            detail=feed.output,
        )

        # gateway → queue_admin → Redis → worker: an accepted job completes.
        base = f"http://127.0.0.1:{gateway}/api/queues/workflow/jobs"
        job_id = _post_json(base, {"name": "statistics_aggregation", "data": {}})["data"]["jobId"]
        wait_until_blocking(
            lambda: _get_json(f"{base}/{job_id}")["data"]["state"] == "completed",
            within=60,
            what="the enqueued job completed by the worker",
            interval=0.2,
            detail=worker.output,
        )

        # Only the volumes were written: the SQLite database and the queue spool, as nobody.
        written = {p.name: p.stat().st_uid for p in data_dir.iterdir()}
        assert {"switchboard.db", "queue-admin-spool.db"} <= written.keys()
        assert set(written.values()) == {NOBODY}
        for process in started:
            assert process.poll() is None, process.output()
    finally:
        for process in reversed(started):
            process.cleanup()


def test_no_process_can_write_outside_its_volumes(tree: ImageTree) -> None:
    data_dir, tmp_dir = tree.volume("data-probe"), tree.volume("tmp-probe")
    probe = (
        "import os, pathlib, sys, tempfile\n"
        "for target in (pathlib.Path(sys.prefix) / 'x', pathlib.Path('/app-probe'), pathlib.Path('/var/tmp/x')):\n"
        "    try:\n"
        "        target.write_text('x')\n"
        "    except OSError as error:\n"
        "        print(error.errno)\n"
        "(pathlib.Path(os.environ['DATA_DIR']) / 'ok').write_text('x')\n"
        "tempfile.TemporaryFile().close()\n"
        "print(os.getuid(), os.getgid())\n"
    )
    process = image_process(tree, "-c", probe, data_dir=data_dir, tmp_dir=tmp_dir, env={})
    with process:
        assert process.wait_exit(timeout=30) == 0, process.output()
    read_only, denied = str(errno.EROFS), str(errno.EACCES)
    *refused, uid, gid = process.stdout.split()
    assert len(refused) == 3, process.output()
    assert set(refused) <= {read_only, denied}
    assert (uid, gid) == (str(NOBODY), str(NOBODY))
    assert (data_dir / "ok").stat().st_uid == NOBODY
