"""A small local Ray cluster for the tests, whose workers know the test-only architectures.

Ray worker processes never import conftest, so "test-band" (which conftest registers) would be
an unknown architecture there. The cluster's runtime_env puts this folder on the workers'
sys.path and names `worker_setup` as Ray's worker_process_setup_hook: every worker imports this
module, and with it conftest (registering test-band*), before it runs a task.
mgctag's Ray runner uses the connection its process already has, so a test that starts the
cluster here runs the real `scan(..., ScanOptions(ray="local"))` on it; a CLI in a child process
joins it with `--ray-address` and gets the same runtime_env the way `ray job submit
--runtime-env-json` hands one to a job's driver (`job_env`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import conftest  # noqa: F401  (in a worker: registers the test architectures)

TESTS = Path(__file__).resolve().parent
# Ray's single-machine mode: every Ray process of the tests (and of their children) listens on
# 127.0.0.1 only. Read when ray is imported, so this module comes before any `import ray`.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def runtime_env(gate: Path | None = None) -> dict:
    """`gate`: the folder test-band-gated models wait on."""
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)}
    if gate is not None:
        env[conftest.GATE_ENV] = str(gate)
    return {"env_vars": env, "worker_process_setup_hook": "raycluster.worker_setup"}


def start(*, num_cpus: int = 2, gate: Path | None = None) -> str:
    """ray.init a local cluster on loopback; returns its address (127.0.0.1:PORT)."""
    import ray

    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env(gate))
    address = ray.get_runtime_context().gcs_address
    if not address.startswith("127."):
        ray.shutdown()
        raise RuntimeError(f"the test cluster must listen on loopback, not {address} (was ray imported first?)")
    return address


def job_env(gate: Path | None = None) -> dict[str, str]:
    """Environment for a driver in a child process: its job's runtime_env, as Ray's job manager sets it."""
    return {"RAY_JOB_CONFIG_JSON_ENV_VAR": json.dumps({"runtime_env": runtime_env(gate)})}


def worker_setup() -> None:
    """Ray's worker_process_setup_hook: importing this module (so conftest) did the registering."""
