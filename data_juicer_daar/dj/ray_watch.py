"""The ops' view of a Ray cluster: which node scored a batch, and a driver that says when the head is gone.

When the head node (its GCS) goes away mid-run, Ray ends the driver with exit status 1, at once
when the driver runs on the head (its object store is gone; the reason is only in Ray's driver
log), or after its GCS reconnect timeout (60 s) elsewhere, with nothing on the console either
way. ``watch_head`` runs in the ``dj-process`` driver: a daemon thread that checks the head's GCS
port and, once it stops answering, prints one line saying what was lost and exits 1 itself.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

from loguru import logger

_watching: set[str] = set()


def _ray():
    ray = sys.modules.get("ray")
    return ray if ray is not None and ray.is_initialized() else None


def ray_node() -> str:
    """ " on Ray node <id>" inside a Ray worker or driver, "" elsewhere: says where rows were scored."""
    ray = _ray()
    return f" on Ray node {ray.get_runtime_context().get_node_id()[:12]}" if ray else ""


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def ray_job() -> str | None:
    """The Ray job id inside a Ray worker or driver (the same in both), None elsewhere."""
    ray = _ray()
    return ray.get_runtime_context().get_job_id() if ray else None


def in_ray_driver() -> bool:
    """Whether this process is a Ray driver (the script that joined or started Ray; not a worker)."""
    ray = _ray()
    return ray is not None and ray.get_runtime_context().worker.mode == ray.SCRIPT_MODE


def watch_head(who: str) -> None:
    """In a Ray driver that joined a running cluster (no-op elsewhere, and once per head):
    ``watch_address`` on the head's GCS."""
    if not in_ray_driver():
        return
    ray = _ray()
    node = getattr(getattr(ray, "_private", None) and ray._private.worker, "_global_node", None)
    if getattr(node, "head", False):  # this driver started the head (`ray_address: local`): it ends with it
        return
    address = ray.get_runtime_context().gcs_address
    if address and address not in _watching:
        _watching.add(address)
        host, port = address.rsplit(":", 1)
        watch_address(host, int(port), who)


def watch_address(host: str, port: int, who: str, interval: float = 0.1, misses: int = 2) -> None:
    """A daemon thread that checks ``host:port`` every ``interval`` seconds; after ``misses`` failed
    checks in a row it prints one line and ends the process with status 1."""

    def watch() -> None:
        failed = 0
        while True:
            failed = 0 if _answers(host, port) else failed + 1
            if failed >= misses:
                if "ray" in sys.modules and not sys.modules["ray"].is_initialized():
                    return  # the run shut Ray down itself: nothing was lost
                message = (
                    f"{who}: the Ray head at {host}:{port} stopped answering mid-run; the rows on the cluster and "
                    "their scores are lost, so the run stops here (any export it began is incomplete): rerun once the head is back"
                )
                logger.error(message)
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except Exception:  # a stream Data-Juicer redirected may be gone already
                        pass
                os.write(2, (message + "\n").encode())  # past any Python-level redirection
                os._exit(1)
            time.sleep(interval)

    threading.Thread(target=watch, name="daar-ray-head-watch", daemon=True).start()
