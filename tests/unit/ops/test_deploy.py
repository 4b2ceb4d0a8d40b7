"""The docker-compose file, Dockerfile, Prometheus config and Grafana dashboard, checked for
structure (there is no Docker engine here): services, healthchecks, start order, profiles,
commands the ``relay`` CLI accepts, scrape targets that exist, panels on real metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from relay_cli.main import build_parser

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
RELAY_SERVICES = ("api", "worker", "flower", "sim")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def test_every_part_is_a_service_with_a_healthcheck(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert set(svc) == {"redis", "api", "worker", "flower", "sim", "minio", "prometheus", "grafana"}
    for name, spec in svc.items():
        test = spec["healthcheck"]["test"]
        assert test[0] == "CMD" and len(test) > 1, name


def test_redis_keeps_its_data_with_aof(compose: dict[str, Any]) -> None:
    redis = services(compose)["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_relay_services_wait_for_a_healthy_redis(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name in ("api", "worker", "flower"):
        assert svc[name]["depends_on"]["redis"] == {"condition": "service_healthy"}, name
        # The simulator is optional: present under the demo profile only.
    for name in ("api", "worker"):
        sim = svc[name]["depends_on"]["sim"]
        assert sim == {"condition": "service_healthy", "required": False}
    assert svc["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_profiles_keep_demo_and_observability_optional(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert svc["sim"]["profiles"] == ["demo"]
    assert svc["prometheus"]["profiles"] == ["observability"]
    assert svc["grafana"]["profiles"] == ["observability"]
    assert svc["minio"]["profiles"] == ["s3"]
    for name in ("redis", "api", "worker", "flower"):
        assert "profiles" not in svc[name], name


def test_minio_is_on_loopback_and_refuses_its_default_password(compose: dict[str, Any]) -> None:
    minio = services(compose)["minio"]
    assert minio["ports"] == [
        "${MINIO_BIND:-127.0.0.1}:9000:9000",
        "${MINIO_BIND:-127.0.0.1}:9001:9001",
    ]
    assert '""|minioadmin) ' in minio["entrypoint"][-1] and "exit 2" in minio["entrypoint"][-1]
    for name in ("api", "worker"):  # they wait for it under the profile, not without it
        assert services(compose)[name]["depends_on"]["minio"] == {
            "condition": "service_healthy",
            "required": False,
        }


def test_a_worker_only_machine_needs_redis_and_the_bucket() -> None:
    data = yaml.safe_load((DEPLOY / "compose.worker.yml").read_text())
    assert set(data["services"]) == {"worker"}
    worker = data["services"]["worker"]
    assert build_parser().parse_args(worker["command"]).command == "worker"
    env = worker["environment"]
    assert env["RELAY_REDIS_URL"].startswith("${RELAY_REDIS_URL:?")
    assert env["RELAY_STORAGE_URL"].startswith("${RELAY_STORAGE_URL:?")
    assert "ports" not in worker and worker["build"]["dockerfile"] == "deploy/Dockerfile"
    assert worker["healthcheck"]["test"][0] == "CMD"


def test_the_worker_scales(compose: dict[str, Any]) -> None:
    worker = services(compose)["worker"]
    # --scale worker=N needs no fixed name and no host port.
    assert "container_name" not in worker and "ports" not in worker


def test_relay_services_run_commands_the_cli_accepts(compose: dict[str, Any]) -> None:
    parser = build_parser()
    svc = services(compose)
    for name in RELAY_SERVICES:
        args = parser.parse_args(svc[name]["command"])
        assert args.command == name, name
        assert svc[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        env = svc[name]["environment"]
        assert env["RELAY_REDIS_URL"] == "redis://redis:6379/0", name


def test_services_bound_to_every_interface_require_their_secrets(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert ":?" in svc["api"]["environment"]["RELAY_API_KEYS"]
    assert ":?" in svc["flower"]["environment"]["RELAY_FLOWER_PASSWORD"]


def test_healthchecks_probe_the_ports_the_commands_listen_on(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name in ("api", "flower", "sim"):
        command = svc[name]["command"]
        port = command[command.index("--port") + 1]
        assert f"127.0.0.1:{port}/" in " ".join(svc[name]["healthcheck"]["test"]), name
    worker = svc["worker"]
    port = worker["command"][worker["command"].index("--metrics-port") + 1]
    assert f"127.0.0.1:{port}/metrics" in " ".join(worker["healthcheck"]["test"])


def test_the_dockerfile_installs_relay_and_runs_unprivileged() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]", text, re.MULTILINE)
    assert "pip install" in text
    for package in ("relay_core", "relay_api", "relay_workers", "relay_cli"):
        assert f"COPY {package} {package}" in text
    assert re.search(r"^USER (?!root)\w+", text, re.MULTILINE)
    assert 'ENTRYPOINT ["relay"]' in text
    cmd = json.loads(re.search(r"^CMD (.+)$", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert build_parser().parse_args(cmd).command == "api"


def test_prometheus_scrapes_the_api_and_every_worker(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["relay-api"]["static_configs"][0]["targets"] == ["api:8000"]
    workers = jobs["relay-workers"]["dns_sd_configs"][0]
    assert workers["names"] == ["worker"]
    command = services(compose)["worker"]["command"]
    assert str(workers["port"]) == command[command.index("--metrics-port") + 1]
    mounted = services(compose)["prometheus"]["volumes"][0]
    assert mounted.startswith("./deploy/prometheus.yml:")


def known_metrics() -> set[str]:
    """Every series name Relay exposes (per-event families and live gauges)."""
    from prometheus_client import CollectorRegistry

    from relay_core.metrics import RelayMetrics, SnapshotCollector
    from relay_core.metrics.live import FarmSnapshot

    names: set[str] = set()
    registry = CollectorRegistry()
    RelayMetrics.create(registry)
    registry.register(SnapshotCollector(FarmSnapshot(providers=[], workers=[], at=0)))
    for family in registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
    return names


def test_the_dashboard_only_charts_metrics_relay_exposes() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "relay.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 12
    used = {m for e in exprs for m in re.findall(r"\brelay_[a-z_]+", e)}
    unknown = used - known_metrics()
    assert not unknown, f"dashboard uses metrics Relay does not expose: {sorted(unknown)}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_grafana_is_provisioned_with_the_datasource_the_dashboard_uses(
    compose: dict[str, Any],
) -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "relay.json").read_text())
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {uid}
    volumes = " ".join(services(compose)["grafana"]["volumes"])
    assert "./deploy/grafana/provisioning:" in volumes and "./deploy/grafana/dashboards:" in volumes


def test_the_documented_compose_commands_are_in_the_operations_guide() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    for command in (
        "docker compose up",
        "--scale worker=",
        "--profile demo",
        "--profile observability",
    ):
        assert command in text, command
