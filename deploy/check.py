#!/usr/bin/env python3
"""Checks the deployment files: compose.yaml (with and without the `ha`
profile) and compose.dev.yaml as Debian's docker-compose renders them, and
deploy/kubernetes/ against the Kubernetes OpenAPI schemas (kubernetes-validate,
strict). Beyond the schemas it checks what the high-availability design
needs: three clustered NATS servers, a sentinel set, two replicas of every
service, probes and disruption budgets, and that every variable set for a
Gatehouse container is a setting `gatehouse config` knows.

Needs `docker-compose` (Debian package docker-compose) and the PyPI package
kubernetes-validate. Prints one line per failure and exits 1 on any.
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
# Variables a Gatehouse container may be given that are not its settings.
NOT_SETTINGS = {"REDISCLI_AUTH", "RUST_LOG"}

failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL {message}")


def known_settings():
    """Every variable `.env.example` (written by `gatehouse config`) documents."""
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^# ([A-Z][A-Z0-9_]+)=", line)
        if match:
            names.add(match.group(1))
    if len(names) < 50:
        fail(f".env.example lists only {len(names)} settings")
    return names


def compose_config(file, profiles=()):
    """The file as docker-compose renders it. Debian's docker-compose (1.x)
    predates the top-level `name`, the one key it would refuse; it is
    dropped from the copy it reads."""
    text = file.read_text()
    if not re.search(r"^name: ", text, re.M):
        fail(f"{file.name} has no top-level name (its volumes would take the folder's name)")
    stripped = re.sub(r"^name: .*\n", "", text, flags=re.M)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as copy:
        copy.write(stripped)
    args = ["docker-compose", "-f", copy.name, "--project-directory", str(ROOT)]
    for profile in profiles:
        args += ["--profile", profile]
    rendered = subprocess.run(args + ["config"], capture_output=True, text=True)
    Path(copy.name).unlink()
    if rendered.returncode != 0:
        fail(f"docker-compose config {file.name} {' '.join(profiles)}: {rendered.stderr.strip()}")
        return {"services": {}}
    return yaml.safe_load(rendered.stdout)


def gatehouse_services(config):
    return {name: s for name, s in config["services"].items() if s.get("image", "").startswith("gatehouse")}


def check_environment(where, environment, settings):
    for name in environment:
        if name not in settings and name not in NOT_SETTINGS:
            fail(f"{where} sets {name}, which is no Gatehouse setting")


def check_compose(settings):
    ha = compose_config(ROOT / "compose.yaml", ["ha"])
    services = ha["services"]
    # `docker compose up` starts the services without a profile: the single-node stack.
    default = {name for name, service in services.items() if not service.get("profiles")}
    if default != {"postgres", "redis", "nats", "auth", "users", "gateway"}:
        fail(f"compose.yaml starts {sorted(default)} without a profile")
    for name, service in services.items():
        if service.get("profiles") and "ha" not in service["profiles"]:
            fail(f"compose.yaml service {name} is in neither the default set nor the ha profile")
    nats = [services.get(f"nats-{i}") for i in (1, 2, 3)]
    if None in nats:
        fail("the ha profile lacks nats-1, nats-2 or nats-3")
    else:
        for i, node in enumerate(nats, 1):
            command = " ".join(node["command"])
            for other in (1, 2, 3):
                if f"nats://nats-{other}:6222" not in command:
                    fail(f"nats-{i} does not route to nats-{other}")
            if "-js" not in node["command"] or "--cluster_name" not in node["command"]:
                fail(f"nats-{i} is not a JetStream cluster member")
    sentinels = [n for n in services if n.startswith("sentinel-")]
    if len(sentinels) < 3:
        fail(f"the ha profile has {len(sentinels)} sentinels, not 3")
    for name in ["auth-ha", "users-ha", "gateway-ha"]:
        service = services.get(name)
        if service is None:
            fail(f"the ha profile has no {name}")
            continue
        if service.get("deploy", {}).get("replicas", 1) < 2:
            fail(f"{name} runs fewer than 2 replicas")
        env = service.get("environment", {})
        if env.get("GATEHOUSE_EVENTS_REPLICAS") != "3":
            fail(f"{name} keeps the events stream on fewer than 3 servers")
        if env.get("REDIS_MODE") != "sentinel" or len(env.get("REDIS_URL", "").split(",")) < 3:
            fail(f"{name} does not follow the sentinels")
        if len(env.get("NATS_URL", "").split(",")) < 3:
            fail(f"{name} does not list every NATS server")
        if "ready" not in " ".join(service.get("healthcheck", {}).get("test", [])):
            fail(f"{name}'s health check is not its readiness")
    balancer = services.get("gateway-lb")
    if balancer is None or "gateway-ha" not in balancer.get("depends_on", {}):
        fail("the ha profile has no load balancer in front of gateway-ha")
    elif not any(str(v).endswith("haproxy.cfg") or "haproxy.cfg" in str(v) for v in balancer.get("volumes", [])):
        fail("gateway-lb does not mount deploy/haproxy.cfg")
    haproxy = (ROOT / "deploy" / "haproxy.cfg").read_text()
    if "gateway-ha:4000" not in haproxy or "httpchk GET /ready" not in haproxy:
        fail("deploy/haproxy.cfg does not balance gateway-ha on its readiness")
    for name, service in gatehouse_services(ha).items():
        check_environment(f"compose.yaml service {name}", service.get("environment", {}), settings)

    compose_config(ROOT / "compose.dev.yaml")


def kubernetes_documents():
    documents = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                documents.append((path.name, document))
    return documents


def check_kubernetes(settings):
    files = sorted(p.name for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    if sorted(kustomization.get("resources", [])) != files:
        fail(f"kustomization.yaml lists {kustomization.get('resources')}, the folder holds {files}")

    validated = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", *[str(KUBERNETES / f) for f in files]],
        capture_output=True,
        text=True,
    )
    if validated.returncode != 0:
        fail(f"kubernetes-validate: {(validated.stdout + validated.stderr).strip()}")
    # The validator itself must refuse what is wrong, or passing means nothing.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as broken:
        broken.write("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n")
    refused = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", broken.name], capture_output=True)
    Path(broken.name).unlink()
    if refused.returncode == 0:
        fail("kubernetes-validate accepted a Deployment with replicas: two")

    documents = kubernetes_documents()
    config = {}
    for _, document in documents:
        if document["kind"] in ("ConfigMap", "Secret") and document["metadata"]["name"] in ("gatehouse-config", "gatehouse-secrets"):
            config.update(document.get("data") or document.get("stringData") or {})
    check_environment("the gatehouse ConfigMap and Secret", config, settings)
    budgets = [d for _, d in documents if d["kind"] == "PodDisruptionBudget"]
    for file, document in documents:
        kind, name = document["kind"], document["metadata"]["name"]
        if kind == "StatefulSet":
            fail(f"{file}: {name} is a StatefulSet; the services keep no state of their own")
        if kind != "Deployment":
            continue
        spec = document["spec"]
        if spec.get("replicas", 1) < 2:
            fail(f"{file}: {name} runs fewer than 2 replicas")
        labels = spec["template"]["metadata"]["labels"]
        if not any(all(labels.get(k) == v for k, v in b["spec"]["selector"]["matchLabels"].items()) for b in budgets):
            fail(f"{file}: no PodDisruptionBudget covers {name}")
        for container in spec["template"]["spec"]["containers"]:
            if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/ready":
                fail(f"{file}: {name} is not ready by /ready")
            if container.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/health":
                fail(f"{file}: {name} is not live by /health")
            check_environment(f"{file}: {name}", {e["name"]: e.get("value") for e in container.get("env", [])}, settings)
            if config.get("GATEHOUSE_ENV") != "production":
                fail("the Kubernetes manifests do not run in production mode")


def main():
    settings = known_settings()
    check_compose(settings)
    check_kubernetes(settings)
    if failures:
        print(f"{len(failures)} deployment check(s) failed")
        sys.exit(1)
    print("deployment files: compose (single and ha) and Kubernetes manifests valid")


if __name__ == "__main__":
    main()
