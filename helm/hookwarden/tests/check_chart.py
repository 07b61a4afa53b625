#!/usr/bin/env python3
"""Offline checks of the hookwarden Helm chart, with Helm's own engine and no cluster.

For every values file in ci/ this renders the chart (helm-python-sdk, which enforces
values.schema.json), lints it strictly, validates the manifests with
`kubernetes-validate --strict` for Kubernetes 1.29 and for the newest version the package
knows, asserts what the chart promises (the Service never targets the app, every container
is restricted, the ServiceMonitor exists only when enabled, the config checksum follows the
config, ...) and runs `hookwarden check` on every hookwarden config it renders.

Then it proves the checks can fail: every file in tests/broken-values/ names, on its first
line, the check that must reject it; and each assertion is run once on a manifest mutated
to break it. It also renders the embedded-sidecar example chart (helm/examples/) and checks
the Dockerfile (hadolint, plus the image facts the chart relies on).

Run it through check-chart.sh, which prepares the virtual environment and the binary.
Exit status: 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import helm_python as helm
import yaml
from helm_python import _native
from kubernetes_validate import utils as kv_utils

CHART_DIR = Path(__file__).resolve().parents[1]
HELM_DIR = CHART_DIR.parent
REPO_DIR = HELM_DIR.parent
EXAMPLE_DIR = HELM_DIR / "examples" / "embedded-sidecar"
BROKEN_DIR = CHART_DIR / "tests" / "broken-values"

RELEASE = "hw-ci"
NAMESPACE = "hookwarden-ci"
OLDEST_KUBE = "1.29.0"
NEWEST_KUBE = kv_utils.latest_version()
IMAGE_UID = 65532
IMAGE_CONFIG_PATH = "/etc/hookwarden/hookwarden.toml"
# Kinds kubernetes-validate has no schema for (CRDs); checked by assertions instead.
CRD_KINDS = {"ServiceMonitor"}
TEST_SECRET_BYTES = b"chart-check-secret-0123456789abcdefghijklmnop\n"
# Stand-in for the Redis URL file (store.backend=redis): `hookwarden check` parses it.
TEST_REDIS_URL_BYTES = b"redis://:chart-check-password@redis.hookwarden-ci.svc:6379/0\n"


class CheckFailed(Exception):
    """One assertion did not hold."""


@dataclass
class Outcome:
    """What one scenario produced: checks that passed and checks that failed."""

    name: str
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def run(self, check: str, fn: Callable[[], Any]) -> Any:
        try:
            result = fn()
        except CheckFailed as e:
            self.failed.append((check, " ".join(str(e).split())))
            return None
        self.passed.append(check)
        return result

    def failed_checks(self) -> set[str]:
        return {c for c, _ in self.failed}


# ---------------------------------------------------------------------------------------
# Helm engine
# ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def go_log_silenced():
    """Helm's Go code logs required-value and fail() messages to stderr on its own; the
    same messages come back as errors, so its stderr is discarded while it runs."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def render(chart: helm.Chart, values: dict, kube_version: str) -> dict[str, str]:
    """Renders like `helm template --kube-version`; raises CheckFailed("schema"/"render").

    Chart.render() has no kube_version option, but the native helm_render call it wraps
    takes one (helm-python-sdk 0.2.2, pinned in requirements.txt), so this calls it directly.
    """
    opts = {
        "name": RELEASE,
        "namespace": NAMESPACE,
        "kube_version": "v" + kube_version,
        "is_install": True,
    }
    try:
        with go_log_silenced():
            out = _native.call_string(
                "helm_render", chart._raw(), json.dumps(values), json.dumps(opts)
            )
    except helm.HelmValuesError as e:
        raise CheckFailed(f"values rejected by values.schema.json: {e}") from None
    except helm.HelmError as e:
        raise CheckFailed(f"render failed: {e}") from None
    return json.loads(out)


def validate_schema(chart: helm.Chart, merged: dict) -> None:
    try:
        with go_log_silenced():
            chart.validate_schema(merged)
    except helm.HelmValuesError as e:
        raise CheckFailed(f"values rejected by values.schema.json: {e}") from None


def manifests_of(rendered: dict[str, str]) -> list[dict]:
    docs = []
    for name, text in sorted(rendered.items()):
        if not name.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {}).setdefault("annotations", {})
                docs.append(doc)
    return docs


def lint(values: dict, kube_version: str, chart_dir: Path = CHART_DIR) -> None:
    with go_log_silenced():
        report = helm.lint(
            chart_dir, values, strict=True, namespace=NAMESPACE, kube_version="v" + kube_version
        )
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    if problems or report.get("errors"):
        lines = [f"{m['path']}: {m['error'].strip()}" for m in problems]
        lines += [e.strip() for e in report.get("errors", []) if e.strip() not in lines]
        raise CheckFailed("helm lint --strict: " + " | ".join(dict.fromkeys(lines)))


# ---------------------------------------------------------------------------------------
# kubernetes-validate
# ---------------------------------------------------------------------------------------


def kube_validate(docs: list[dict], version: str, workdir: Path, tag: str) -> None:
    safe = re.sub(r"[^\w.-]", "_", tag)
    path = workdir / f"{safe}-k{version}.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    proc = subprocess.run(
        [
            shutil.which("kubernetes-validate") or "kubernetes-validate",
            "--strict",
            "--quiet",
            "-k",
            version,
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    bad = []
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.startswith("WARN") and any(f"kind {k} " in line for k in CRD_KINDS):
            continue
        if line.strip():
            bad.append(line.replace(str(path), path.name))
    if proc.returncode != 0 or bad:
        raise CheckFailed(f"kubernetes-validate --strict -k {version}: " + " | ".join(bad))


# ---------------------------------------------------------------------------------------
# Manifest helpers
# ---------------------------------------------------------------------------------------


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in of_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    if len(found) != 1:
        raise CheckFailed(f"expected one {kind}{' ' + name if name else ''}, found {len(found)}")
    return found[0]


def pod_specs(docs: list[dict]) -> list[tuple[str, dict, dict]]:
    """(owner, pod metadata, pod spec) of every pod the manifests create."""
    pods = []
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            t = d["spec"]["template"]
            pods.append((f"{d['kind']}/{d['metadata']['name']}", t.get("metadata", {}), t["spec"]))
        elif d["kind"] == "Pod":
            pods.append((f"Pod/{d['metadata']['name']}", d["metadata"], d["spec"]))
    return pods


def containers_of(spec: dict) -> list[dict]:
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


def workload(docs: list[dict]) -> tuple[dict, dict]:
    dep = one(docs, "Deployment")
    return dep, dep["spec"]["template"]["spec"]


def hookwarden_container(spec: dict) -> dict:
    found = [c for c in containers_of(spec) if c["name"] == "hookwarden"]
    if len(found) != 1:
        raise CheckFailed(f"expected one hookwarden container, found {len(found)}")
    return found[0]


def app_container(spec: dict, values: dict) -> dict:
    found = [c for c in spec.get("containers", []) if c["name"] == values["app"]["name"]]
    if len(found) != 1:
        raise CheckFailed(f"expected one app container {values['app']['name']!r}")
    return found[0]


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def port_of(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def config_of(docs: list[dict]) -> tuple[str, dict]:
    text = None
    for cm in of_kind(docs, "ConfigMap"):
        if "hookwarden.toml" in cm.get("data", {}):
            text = cm["data"]["hookwarden.toml"]
    if text is None:
        raise CheckFailed("no ConfigMap holds hookwarden.toml")
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CheckFailed(f"rendered hookwarden.toml is not valid TOML: {e}") from None


def sleep_of(container: dict) -> int:
    return int(container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0))


# ---------------------------------------------------------------------------------------
# Assertions on one rendering
# ---------------------------------------------------------------------------------------


def assert_service_targets_proxy(docs: list[dict], values: dict) -> None:
    """Every Service port lands on a hookwarden port; the main one on "proxy"."""
    _, spec = workload(docs)
    app = app_container(spec, values)
    app_ports = {p["containerPort"] for p in app.get("ports", [])} | {values["app"]["port"]}
    app_names = {p["name"] for p in app.get("ports", []) if "name" in p}
    hw = hookwarden_container(spec)
    hw_ports = {p["name"]: p["containerPort"] for p in hw["ports"]}
    services = of_kind(docs, "Service")
    if not services:
        raise CheckFailed("no Service rendered")
    for svc in services:
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            where = f"Service {svc['metadata']['name']} port {port['port']}"
            if target in app_names or target in app_ports:
                raise CheckFailed(f"{where} targets the app's port ({target})")
            if isinstance(target, str) and target not in hw_ports:
                raise CheckFailed(f"{where} targets {target!r}, no port of hookwarden")
            number = hw_ports.get(target, target)
            if number in app_ports:
                raise CheckFailed(f"{where} resolves to the app's port {number}")
    main = one(docs, "Service", workload(docs)[0]["metadata"]["name"])
    if [p.get("targetPort") for p in main["spec"]["ports"]] != ["proxy"]:
        raise CheckFailed("the main Service must target hookwarden's proxy port only")


def assert_restricted(docs: list[dict], values: dict) -> None:
    """Pod Security Standard "restricted", plus a read-only root, in every container."""
    pods = pod_specs(docs)
    if not pods:
        raise CheckFailed("no pods rendered")
    for owner, _, spec in pods:
        psc = spec.get("securityContext", {})
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag):
                raise CheckFailed(f"{owner}: {flag} is set")
        for vol in spec.get("volumes", []):
            if "hostPath" in vol:
                raise CheckFailed(f"{owner}: hostPath volume {vol['name']}")
        for c in containers_of(spec):
            sc = c.get("securityContext", {})
            where = f"{owner} container {c['name']}"

            def eff(key, sc=sc, psc=psc):
                return sc.get(key, psc.get(key))

            if eff("runAsNonRoot") is not True:
                raise CheckFailed(f"{where}: runAsNonRoot is not true")
            if eff("runAsUser") == 0:
                raise CheckFailed(f"{where}: runAsUser is 0")
            if sc.get("privileged"):
                raise CheckFailed(f"{where}: privileged")
            if sc.get("allowPrivilegeEscalation") is not False:
                raise CheckFailed(f"{where}: allowPrivilegeEscalation is not false")
            caps = sc.get("capabilities", {})
            if "ALL" not in caps.get("drop", []):
                raise CheckFailed(f"{where}: capabilities do not drop ALL")
            if caps.get("add"):
                raise CheckFailed(f"{where}: capabilities add {caps['add']}")
            seccomp = (eff("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                raise CheckFailed(f"{where}: seccompProfile is {seccomp!r}, not RuntimeDefault")
            if sc.get("readOnlyRootFilesystem") is not True:
                raise CheckFailed(f"{where}: readOnlyRootFilesystem is not true")
            if any("hostPort" in p for p in c.get("ports", [])):
                raise CheckFailed(f"{where}: uses a hostPort")


def assert_servicemonitor_iff_enabled(docs: list[dict], values: dict) -> None:
    monitors = of_kind(docs, "ServiceMonitor")
    enabled = values["metrics"]["serviceMonitor"]["enabled"]
    if enabled != (len(monitors) == 1) or len(monitors) > 1:
        raise CheckFailed(
            f"serviceMonitor.enabled={enabled} but {len(monitors)} ServiceMonitor(s) rendered"
        )
    if not monitors:
        return
    sm = monitors[0]
    match = sm["spec"]["selector"]["matchLabels"]
    ports = [e["port"] for e in sm["spec"]["endpoints"]]
    targets = [s for s in of_kind(docs, "Service") if selects(match, s["metadata"]["labels"])]
    if len(targets) != 1:
        raise CheckFailed(f"ServiceMonitor selects {len(targets)} Services, not one")
    names = {p.get("name") for p in targets[0]["spec"]["ports"]}
    if ports != ["admin"] or "admin" not in names:
        raise CheckFailed(f"ServiceMonitor endpoints {ports} do not scrape the admin port")
    if any(e.get("path") != "/metrics" for e in sm["spec"]["endpoints"]):
        raise CheckFailed("ServiceMonitor does not scrape /metrics")


def assert_networkpolicy(docs: list[dict], values: dict) -> None:
    policies = of_kind(docs, "NetworkPolicy")
    if values["networkPolicy"]["enabled"] != bool(policies):
        raise CheckFailed(
            f"networkPolicy.enabled={values['networkPolicy']['enabled']} "
            f"but {len(policies)} NetworkPolicy rendered"
        )
    if not policies:
        return
    np = policies[0]
    _, spec = workload(docs)
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    if not selects(np["spec"]["podSelector"]["matchLabels"], pod_labels):
        raise CheckFailed("NetworkPolicy does not select the workload's pods")
    if "Ingress" not in np["spec"].get("policyTypes", []):
        raise CheckFailed("NetworkPolicy does not restrict ingress")
    admitted = {p["port"] for rule in np["spec"].get("ingress", []) for p in rule.get("ports", [])}
    hw = {p["name"]: p["containerPort"] for p in hookwarden_container(spec)["ports"]}
    expected = {hw["proxy"], hw["admin"]}
    if admitted != expected:
        raise CheckFailed(
            f"NetworkPolicy admits ports {sorted(admitted)}, expected {sorted(expected)}"
        )
    if any("ports" not in rule for rule in np["spec"].get("ingress", [])):
        raise CheckFailed("a NetworkPolicy ingress rule admits every port")


def assert_selectors_skip_tests(docs: list[dict], values: dict) -> None:
    """No Service, PDB or policy picks up the helm test pods (they serve nothing)."""
    test_pods = [d for d in of_kind(docs, "Pod")]
    selectors = []
    for d in of_kind(docs, "Service"):
        selectors.append((f"Service {d['metadata']['name']}", d["spec"].get("selector", {})))
    for d in of_kind(docs, "PodDisruptionBudget"):
        selectors.append(("PodDisruptionBudget", d["spec"]["selector"]["matchLabels"]))
    for d in of_kind(docs, "NetworkPolicy"):
        selectors.append(("NetworkPolicy", d["spec"]["podSelector"]["matchLabels"]))
    for what, sel in selectors:
        for pod in test_pods:
            if selects(sel, pod["metadata"].get("labels", {})):
                raise CheckFailed(f"{what} selects test pod {pod['metadata']['name']}")
    dep = one(docs, "Deployment")
    if dep["spec"]["selector"]["matchLabels"] != {
        k: v
        for k, v in dep["spec"]["template"]["metadata"]["labels"].items()
        if k in dep["spec"]["selector"]["matchLabels"]
    }:
        raise CheckFailed("Deployment selector does not match its pod labels")


def assert_sidecar_mode(docs: list[dict], values: dict) -> None:
    _, spec = workload(docs)
    inits = [c["name"] for c in spec.get("initContainers", [])]
    mains = [c["name"] for c in spec.get("containers", [])]
    hw = hookwarden_container(spec)
    if values["proxy"]["sidecarMode"] == "native":
        if "hookwarden" not in inits or hw.get("restartPolicy") != "Always":
            raise CheckFailed(
                "native mode: hookwarden must be an init container with restartPolicy: Always"
            )
        if "hookwarden" in mains:
            raise CheckFailed("native mode: hookwarden is also an ordinary container")
    else:
        if "hookwarden" not in mains or "restartPolicy" in hw:
            raise CheckFailed("classic mode: hookwarden must be an ordinary container")


def assert_probes(docs: list[dict], values: dict) -> None:
    _, spec = workload(docs)
    hw = hookwarden_container(spec)
    want = {"startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/readyz"}
    for probe, path in want.items():
        get = hw.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") != "admin":
            raise CheckFailed(f"hookwarden {probe} is not GET {path} on the admin port: {get}")


def assert_config_consistent(docs: list[dict], values: dict) -> None:
    """The rendered config, the container and its volumes agree on ports and paths."""
    _, spec = workload(docs)
    _, cfg = config_of(docs)
    hw = hookwarden_container(spec)
    app = app_container(spec, values)
    ports = {p["name"]: p["containerPort"] for p in hw["ports"]}
    if port_of(cfg["server"]["listen"]) != ports["proxy"]:
        raise CheckFailed(
            f"listen {cfg['server']['listen']} is not the proxy port {ports['proxy']}"
        )
    if port_of(cfg["server"].get("admin_listen", ":0")) != ports["admin"]:
        raise CheckFailed("admin_listen is not the admin port")
    upstream = cfg["upstream"]["url"]
    if upstream != f"http://127.0.0.1:{app['ports'][0]['containerPort']}":
        raise CheckFailed(f"upstream {upstream} is not the app's port on loopback")
    if hw.get("args", [])[-3:] != ["run", "--config", IMAGE_CONFIG_PATH]:
        raise CheckFailed(f"hookwarden args {hw.get('args')} do not run {IMAGE_CONFIG_PATH}")
    mounts = {m["name"]: m for m in hw["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    cm_name = volumes[mounts["hookwarden-config"]["name"]]["configMap"]["name"]
    if mounts["hookwarden-config"]["mountPath"] != os.path.dirname(IMAGE_CONFIG_PATH):
        raise CheckFailed("the config is not mounted where hookwarden reads it")
    if not [
        cm
        for cm in of_kind(docs, "ConfigMap")
        if cm["metadata"]["name"] == cm_name and "hookwarden.toml" in cm["data"]
    ]:
        raise CheckFailed(f"the config volume's ConfigMap {cm_name} is not rendered")
    if uses_local_store(values):
        if "hookwarden-store" not in mounts:
            raise CheckFailed("the sled store's volume is not mounted")
        store_mount = mounts["hookwarden-store"]["mountPath"].rstrip("/") + "/"
        if not cfg["store"].get("path", "").startswith(store_mount):
            raise CheckFailed(f"store path {cfg['store'].get('path')} is not on the store volume")
    elif "path" in cfg["store"]:
        raise CheckFailed("a Redis store without a local fallback has a path, but no volume")
    # Every secret file exists in the projected volume, whole-directory mounted.
    secret_mount = mounts["hookwarden-secrets"]["mountPath"].rstrip("/") + "/"
    projected = {
        f"{secret_mount}{item['path']}": (src["secret"]["name"], item["key"])
        for src in volumes["hookwarden-secrets"]["projected"]["sources"]
        for item in src["secret"]["items"]
    }
    for route in cfg["routes"]:
        for source in route["secrets"]:
            if "file" in source and source["file"] not in projected:
                raise CheckFailed(
                    f"route {route['name']}: {source['file']} is in no mounted Secret"
                )
    url = cfg["store"].get("redis_url")
    if isinstance(url, dict) and "file" in url and url["file"] not in projected:
        raise CheckFailed(f"[store] redis_url {url['file']} is in no mounted Secret")
    names = [r["name"] for r in values["config"]["routes"]]
    if [r["name"] for r in cfg["routes"]] != names:
        raise CheckFailed("rendered routes differ from config.routes")


def assert_no_subpath(docs: list[dict], values: dict) -> None:
    for owner, _, spec in pod_specs(docs):
        for c in containers_of(spec):
            for m in c.get("volumeMounts", []):
                if "subPath" in m or "subPathExpr" in m:
                    raise CheckFailed(f"{owner} {c['name']} mounts {m['name']} with subPath")


def uses_redis(values: dict) -> bool:
    return values["store"].get("backend", "sled") == "redis"


def uses_local_store(values: dict) -> bool:
    """sled, or Redis with the onUnavailable=local fallback: the pod needs a store volume."""
    return not uses_redis(values) or values["store"]["redis"]["onUnavailable"] == "local"


def assert_store_volume(docs: list[dict], values: dict) -> None:
    dep, spec = workload(docs)
    persistence = values["store"]["persistence"]
    if not uses_local_store(values):
        mounted = [
            m["name"]
            for c in containers_of(spec)
            for m in c.get("volumeMounts", [])
            if m["name"] == "hookwarden-store"
        ]
        if "hookwarden-store" in {v["name"] for v in spec["volumes"]} or mounted:
            raise CheckFailed("a Redis store without a local fallback still gets a store volume")
        if of_kind(docs, "PersistentVolumeClaim"):
            raise CheckFailed("a PVC is rendered for a Redis store without a local fallback")
        return
    vol = {v["name"]: v for v in spec["volumes"]}.get("hookwarden-store")
    if vol is None:
        raise CheckFailed("the local store has no hookwarden-store volume")
    if persistence["enabled"]:
        claim = vol.get("persistentVolumeClaim", {}).get("claimName")
        pvcs = [p["metadata"]["name"] for p in of_kind(docs, "PersistentVolumeClaim")]
        if claim is None or (claim not in pvcs and claim != persistence["existingClaim"]):
            raise CheckFailed(f"store volume claims {claim!r}; rendered PVCs: {pvcs}")
        if dep["spec"]["strategy"].get("type") != "Recreate":
            raise CheckFailed("a PVC store needs the Recreate strategy")
    else:
        if not vol.get("emptyDir", {}).get("sizeLimit"):
            raise CheckFailed("the store emptyDir has no sizeLimit")
        if of_kind(docs, "PersistentVolumeClaim"):
            raise CheckFailed("a PVC is rendered although persistence is off")


def assert_store_backend(docs: list[dict], values: dict) -> None:
    """The config names the chosen backend and its settings; a Redis URL is read from the
    file of the named Secret's key (never inline: it may hold a password), and the `helm test`
    pods do not mount it."""
    _, spec = workload(docs)
    _, cfg = config_of(docs)
    store = cfg["store"]
    if not uses_redis(values):
        redis_keys = sorted(k for k in store if k.startswith("redis_") or k == "on_unavailable")
        if store.get("backend", "sled") != "sled" or redis_keys:
            raise CheckFailed(f"store.backend is sled but the config has {redis_keys or 'backend'}")
        return
    r = values["store"]["redis"]
    if store.get("backend") != "redis":
        raise CheckFailed(f"store.backend is redis but the config has {store.get('backend')!r}")
    url = store.get("redis_url")
    if not isinstance(url, dict) or set(url) != {"file"}:
        raise CheckFailed("[store] redis_url is not read from a file (a URL may hold a password)")
    secrets_mount = next(
        m["mountPath"]
        for m in hookwarden_container(spec)["volumeMounts"]
        if m["name"] == "hookwarden-secrets"
    )
    want = f"{secrets_mount.rstrip('/')}/{r['existingSecret']}/{r['urlKey']}"
    if url["file"] != want:
        raise CheckFailed(f"[store] redis_url file {url['file']} is not {want}")
    for key, expected in (
        ("redis_prefix", r["prefix"]),
        ("redis_timeout_ms", r["timeoutMs"]),
        ("on_unavailable", r["onUnavailable"]),
    ):
        if store.get(key) != expected:
            raise CheckFailed(f"[store] {key} = {store.get(key)!r}, values say {expected!r}")
    url_item = (r["existingSecret"], r["urlKey"])
    route_items = {
        (s.get("secretName") or values["secrets"]["existingSecret"], s["key"])
        for route in values["config"]["routes"]
        for s in route["secrets"]
    }
    for pod in of_kind(docs, "Pod"):
        for vol in pod["spec"].get("volumes", []):
            for src in vol.get("projected", {}).get("sources", []):
                items = {(src["secret"]["name"], i["key"]) for i in src["secret"]["items"]}
                if url_item in items and url_item not in route_items:
                    raise CheckFailed(f"test pod {pod['metadata']['name']} mounts the Redis URL")


def assert_shutdown(docs: list[dict], values: dict, kube_version: str) -> None:
    """terminationGracePeriodSeconds covers the preStop sleeps and the shutdown grace."""
    _, spec = workload(docs)
    _, cfg = config_of(docs)
    grace = int(cfg["server"]["shutdown_grace_seconds"])
    hw = hookwarden_container(spec)
    app = app_container(spec, values)
    period = int(spec["terminationGracePeriodSeconds"])
    need = max(sleep_of(c) for c in containers_of(spec)) + grace
    if period < need:
        raise CheckFailed(
            f"terminationGracePeriodSeconds {period} < preStop + shutdown grace ({need})"
        )
    has_sleep = tuple(map(int, kube_version.split(".")[:2])) >= (1, 30)
    if has_sleep and not values["app"]["lifecycle"]:
        if sleep_of(app) < grace:
            raise CheckFailed(
                f"the app's preStop sleep {sleep_of(app)} s is shorter than the "
                f"proxy's shutdown grace {grace} s"
            )
        if (
            values["proxy"]["sidecarMode"] == "classic"
            and values["proxy"]["preStopSleepSeconds"] > 0
        ):
            if sleep_of(hw) != values["proxy"]["preStopSleepSeconds"]:
                raise CheckFailed("classic mode: hookwarden has no preStop sleep")
    if not has_sleep and any(
        "lifecycle" in c and "sleep" in c["lifecycle"].get("preStop", {})
        for c in containers_of(spec)
    ):
        raise CheckFailed(f"Kubernetes {kube_version} has no preStop sleep action, yet one is used")


def assert_resources(docs: list[dict], values: dict) -> None:
    _, spec = workload(docs)
    res = hookwarden_container(spec).get("resources", {})
    if not res.get("requests", {}).get("cpu") or not res.get("requests", {}).get("memory"):
        raise CheckFailed("hookwarden has no CPU and memory requests")
    if not res.get("limits", {}).get("memory"):
        raise CheckFailed("hookwarden has no memory limit")


def assert_checksum_matches(docs: list[dict], values: dict) -> str:
    """The annotation is the SHA-256 of the rendered config; returns it."""
    dep, _ = workload(docs)
    annotation = dep["spec"]["template"]["metadata"].get("annotations", {}).get("checksum/config")
    text, _ = config_of(docs)
    digest = hashlib.sha256(text.rstrip("\n").encode()).hexdigest()
    if annotation != digest:
        raise CheckFailed(f"checksum/config {annotation} is not the config's SHA-256 {digest}")
    return annotation


def assert_test_pods(docs: list[dict], values: dict) -> None:
    """Two helm test pods: a signed delivery expecting 2xx, a forged one expecting 401."""
    pods = [
        p
        for p in of_kind(docs, "Pod")
        if p["metadata"]["annotations"].get("helm.sh/hook") == "test"
    ]
    if not values["tests"]["enabled"]:
        if pods:
            raise CheckFailed("tests.enabled is false but test pods are rendered")
        return
    if len(pods) != 2:
        raise CheckFailed(f"expected 2 helm test pods, found {len(pods)}")
    dep, spec = workload(docs)
    image = hookwarden_container(spec)["image"]
    svc = one(docs, "Service", dep["metadata"]["name"])
    route_name = values["tests"]["route"] or values["config"]["routes"][0]["name"]
    route = next(r for r in values["config"]["routes"] if r["name"] == route_name)
    url = (
        f"http://{svc['metadata']['name']}.{NAMESPACE}.svc:{svc['spec']['ports'][0]['port']}"
        f"{route['path']}"
    )
    expected = {"signed": "2xx", "forged": "401"}
    for pod in pods:
        (c,) = pod["spec"]["containers"]
        args = c.get("args", [])
        kind = "signed" if pod["metadata"]["name"].endswith("-signed") else "forged"
        where = f"test pod {pod['metadata']['name']}"
        if c["image"] != image or c.get("command"):
            raise CheckFailed(f"{where} does not run the hookwarden image's entrypoint")
        if args[:1] != ["sign"] or args[args.index("--send") + 1] != url:
            raise CheckFailed(f"{where} does not `sign --send {url}`: {args}")
        if args[args.index("--route") + 1] != route_name:
            raise CheckFailed(f"{where} signs for route {args[args.index('--route') + 1]}")
        if values["tests"]["expectStatus"]:
            if (
                "--expect-status" not in args
                or args[args.index("--expect-status") + 1] != expected[kind]
            ):
                raise CheckFailed(f"{where} does not expect {expected[kind]}")
        if pod["spec"].get("restartPolicy") != "Never":
            raise CheckFailed(f"{where} would be restarted")


def assert_crds_shape(docs: list[dict], values: dict) -> None:
    """What kubernetes-validate cannot: the ServiceMonitor's required fields."""
    for sm in of_kind(docs, "ServiceMonitor"):
        if sm.get("apiVersion") != "monitoring.coreos.com/v1":
            raise CheckFailed(f"ServiceMonitor apiVersion {sm.get('apiVersion')}")
        spec = sm.get("spec", {})
        if not spec.get("selector", {}).get("matchLabels") or not spec.get("endpoints"):
            raise CheckFailed("ServiceMonitor lacks selector.matchLabels or endpoints")
        allowed = {
            "port",
            "path",
            "interval",
            "scrapeTimeout",
            "scheme",
            "honorLabels",
            "relabelings",
            "metricRelabelings",
            "targetPort",
        }
        for e in spec["endpoints"]:
            if set(e) - allowed:
                raise CheckFailed(f"ServiceMonitor endpoint has unknown keys {set(e) - allowed}")
            for key in ("interval", "scrapeTimeout"):
                if key in e and not re.fullmatch(r"[0-9]+(ms|s|m|h)", str(e[key])):
                    raise CheckFailed(f"ServiceMonitor {key} {e[key]!r} is not a duration")


MANIFEST_ASSERTIONS: list[tuple[str, Callable[[list[dict], dict], Any]]] = [
    ("service-targets-proxy", assert_service_targets_proxy),
    ("restricted-security", assert_restricted),
    ("servicemonitor-iff-enabled", assert_servicemonitor_iff_enabled),
    ("networkpolicy", assert_networkpolicy),
    ("selectors-skip-tests", assert_selectors_skip_tests),
    ("sidecar-mode", assert_sidecar_mode),
    ("probes-on-admin-port", assert_probes),
    ("config-consistent", assert_config_consistent),
    ("no-subpath", assert_no_subpath),
    ("store-volume", assert_store_volume),
    ("store-backend", assert_store_backend),
    ("resources", assert_resources),
    ("checksum-is-config-digest", assert_checksum_matches),
    ("test-pods", assert_test_pods),
    ("crd-shape", assert_crds_shape),
]


# ---------------------------------------------------------------------------------------
# hookwarden check
# ---------------------------------------------------------------------------------------


class Hookwarden:
    """Runs `hookwarden check` on rendered configs, with stand-in secrets."""

    def __init__(self, binary: Path, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self.count = 0
        self.knows_admin_listen = self._knows_admin_listen()
        help_text = subprocess.run(
            [str(binary), "sign", "--help"], capture_output=True, text=True, check=False
        ).stdout
        self.knows_expect_status = "--expect-status" in help_text

    def _knows_admin_listen(self) -> bool:
        probe = self.workdir / "admin-listen-probe.toml"
        probe.write_text(
            '[server]\nlisten = "127.0.0.1:1"\nadmin_listen = "127.0.0.1:2"\n'
            '[upstream]\nurl = "http://127.0.0.1:3"\n[store]\npath = "x"\n'
        )
        proc = subprocess.run(
            [str(self.binary), "check", "--config", str(probe)],
            capture_output=True,
            text=True,
            check=False,
        )
        return "unknown field `admin_listen`" not in proc.stderr

    def check(self, text: str, mount_path: str, env: dict[str, str] | None = None) -> list[str]:
        """Checks one config; returns notes. Secret files under mount_path are stood in for."""
        self.count += 1
        root = self.workdir / f"check-{self.count}"
        notes = []
        prefix = mount_path.rstrip("/") + "/"
        try:
            redis_url = tomllib.loads(text).get("store", {}).get("redis_url")
        except tomllib.TOMLDecodeError:
            redis_url = None  # hookwarden check reports it
        url_file = redis_url.get("file") if isinstance(redis_url, dict) else None
        for match in set(re.findall(r'file = "(' + re.escape(prefix) + r'[^"]+)"', text)):
            local = root / "secrets" / match[len(prefix) :]
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(TEST_REDIS_URL_BYTES if match == url_file else TEST_SECRET_BYTES)
        text = text.replace(f'"{prefix}', f'"{root}/secrets/')
        if not self.knows_admin_listen:
            text = re.sub(r"(?m)^admin_listen = .*\n", "", text)
            notes.append(
                "this hookwarden binary predates [server] admin_listen: "
                "checked the config without that line"
            )
        path = root / "hookwarden.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        proc = subprocess.run(
            [str(self.binary), "check", "--config", str(path)],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})},
        )
        if proc.returncode != 0:
            raise CheckFailed(
                f"hookwarden check exited {proc.returncode}: "
                + (proc.stderr.strip() or proc.stdout.strip()).replace(str(root), "<tmp>")
            )
        return notes


def check_rendered_configs(docs: list[dict], values: dict, hw: Hookwarden) -> list[str]:
    notes = []
    text, _ = config_of(docs)
    mount = values["secrets"]["mountPath"]
    notes += hw.check(text, mount)
    for cm in of_kind(docs, "ConfigMap"):
        for key in ("signed.toml", "forged.toml"):
            if key not in cm.get("data", {}):
                continue
            pod = next(
                p
                for p in of_kind(docs, "Pod")
                if p["metadata"]["name"].endswith("-" + key.split(".")[0])
            )
            env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0].get("env", [])}
            notes += hw.check(cm["data"][key], mount, env)
    return notes


# ---------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------


def run_scenario(
    name: str, values: dict, chart: helm.Chart, hw: Hookwarden, workdir: Path
) -> Outcome:
    out = Outcome(name)
    merged = chart.merge_values(values)
    out.run("schema", lambda: validate_schema(chart, merged))
    rendered_by_version: dict[str, list[dict]] = {}
    for version in (OLDEST_KUBE, NEWEST_KUBE):
        tag = f"k{version}"
        docs = out.run(f"render-{tag}", lambda v=version: manifests_of(render(chart, values, v)))
        out.run(f"lint-{tag}", lambda v=version: lint(values, v))
        if docs is None:
            continue
        rendered_by_version[version] = docs
        out.run(
            f"kubernetes-validate-{tag}",
            lambda d=docs, v=version: kube_validate(d, v, workdir, name),
        )
        for check, fn in MANIFEST_ASSERTIONS:
            out.run(f"{check}-{tag}", lambda f=fn, d=docs: f(d, merged))
        out.run(f"shutdown-{tag}", lambda d=docs, v=version: assert_shutdown(d, merged, v))
    docs = rendered_by_version.get(NEWEST_KUBE)
    if docs is None:
        return out
    notes = out.run("hookwarden-check", lambda: check_rendered_configs(docs, merged, hw))
    out.notes += sorted(set(notes or []))
    out.run("checksum-follows-config", lambda: assert_checksum_follows(values, chart))
    return out


def checksum(chart: helm.Chart, values: dict) -> str:
    dep, _ = workload(manifests_of(render(chart, values, NEWEST_KUBE)))
    return dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def assert_checksum_follows(values: dict, chart: helm.Chart) -> None:
    """A config change changes checksum/config; a change elsewhere does not."""
    base = checksum(chart, values)
    merged = chart.merge_values(values)
    changes = {
        "a route's toleranceSeconds": lambda v: v["config"]["routes"][0].__setitem__(
            "toleranceSeconds", v["config"]["routes"][0]["toleranceSeconds"] + 1
        ),
        "server.threads": lambda v: v["config"]["server"].__setitem__(
            "threads", v["config"]["server"]["threads"] + 1
        ),
        "app.port (the upstream URL)": lambda v: v["app"].__setitem__("port", 3999),
        "a route's secret key": lambda v: v["config"]["routes"][0]["secrets"][0].__setitem__(
            "key", "rotated-key"
        ),
    }
    if uses_redis(merged):
        changes["store.redis.prefix"] = lambda v: v["store"]["redis"].__setitem__(
            "prefix", v["store"]["redis"]["prefix"] + "-next"
        )
        changes["store.redis.urlKey"] = lambda v: v["store"]["redis"].__setitem__(
            "urlKey", "rotated-url"
        )
    for what, change in changes.items():
        v = copy.deepcopy(merged)
        change(v)
        if checksum(chart, v) == base:
            raise CheckFailed(f"changing {what} leaves checksum/config unchanged")
    v = copy.deepcopy(merged)
    v["deployment"]["podLabels"] = {"unrelated": "change"}
    if checksum(chart, v) != base:
        raise CheckFailed("a change outside the config changed checksum/config")


def expected_failure(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    m = re.match(r"#\s*expect-failure:\s*(\S+)", first)
    if not m:
        raise SystemExit(f"{path}: first line must be '# expect-failure: <check>'")
    return m.group(1)


# ---------------------------------------------------------------------------------------
# Mutation tests: every assertion rejects a manifest broken on purpose
# ---------------------------------------------------------------------------------------


def mutations(
    docs: list[dict], values: dict, workdir: Path
) -> list[tuple[str, Callable[[list[dict]], None], Callable]]:
    def dep_spec(d):
        return one(d, "Deployment")["spec"]["template"]["spec"]

    def app(d):
        return app_container(dep_spec(d), values)

    def svc_to_app(d):
        one(d, "Service", one(d, "Deployment")["metadata"]["name"])["spec"]["ports"][0][
            "targetPort"
        ] = "app"

    def svc_to_app_number(d):
        one(d, "Service", one(d, "Deployment")["metadata"]["name"])["spec"]["ports"][0][
            "targetPort"
        ] = values["app"]["port"]

    def writable_root(d):
        hookwarden_container(dep_spec(d))["securityContext"]["readOnlyRootFilesystem"] = False

    def escalation(d):
        app(d)["securityContext"].pop("allowPrivilegeEscalation")

    def keep_caps(d):
        app(d)["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}

    def stray_monitor(d):
        d.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "ServiceMonitor",
                "metadata": {"name": "x", "annotations": {}},
                "spec": {"selector": {"matchLabels": {"a": "b"}}, "endpoints": [{"port": "admin"}]},
            }
        )

    def subpath(d):
        hookwarden_container(dep_spec(d))["volumeMounts"][1]["subPath"] = "x"

    def probe_on_proxy(d):
        hookwarden_container(dep_spec(d))["readinessProbe"]["httpGet"]["port"] = "proxy"

    def short_grace(d):
        dep_spec(d)["terminationGracePeriodSeconds"] = 1

    def stale_checksum(d):
        one(d, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"] = (
            "0" * 64
        )

    def wrong_upstream(d):
        for cm in of_kind(d, "ConfigMap"):
            if "hookwarden.toml" in cm["data"]:
                cm["data"]["hookwarden.toml"] = cm["data"]["hookwarden.toml"].replace(
                    "http://127.0.0.1:", "http://127.0.0.2:"
                )

    def unknown_field(d):
        dep_spec(d)["containers"][0]["readinessGate"] = True

    def wrong_type(d):
        one(d, "Deployment")["spec"]["replicas"] = "two"

    def validate_both(d, v):
        for version in (OLDEST_KUBE, NEWEST_KUBE):
            kube_validate(d, version, workdir, "mutation")

    def test_pod_selected(d):
        pod = of_kind(d, "Pod")[0]
        pod["metadata"]["labels"].update(one(d, "Deployment")["spec"]["selector"]["matchLabels"])

    return [
        ("service-targets-proxy", svc_to_app, assert_service_targets_proxy),
        ("service-targets-proxy", svc_to_app_number, assert_service_targets_proxy),
        ("restricted-security", writable_root, assert_restricted),
        ("restricted-security", escalation, assert_restricted),
        ("restricted-security", keep_caps, assert_restricted),
        ("servicemonitor-iff-enabled", stray_monitor, assert_servicemonitor_iff_enabled),
        ("no-subpath", subpath, assert_no_subpath),
        ("probes-on-admin-port", probe_on_proxy, assert_probes),
        ("shutdown", short_grace, lambda d, v: assert_shutdown(d, v, NEWEST_KUBE)),
        ("checksum-is-config-digest", stale_checksum, assert_checksum_matches),
        ("config-consistent", wrong_upstream, assert_config_consistent),
        ("selectors-skip-tests", test_pod_selected, assert_selectors_skip_tests),
        ("kubernetes-validate", unknown_field, validate_both),
        ("kubernetes-validate", wrong_type, validate_both),
    ]


def redis_mutations(
    docs: list[dict], values: dict, workdir: Path
) -> list[tuple[str, Callable[[list[dict]], None], Callable]]:
    """Breaks a store.backend=redis rendering (without the local fallback)."""
    r = values["store"]["redis"]

    def dep_spec(d):
        return one(d, "Deployment")["spec"]["template"]["spec"]

    def edit_config(d, fn):
        for cm in of_kind(d, "ConfigMap"):
            if "hookwarden.toml" in cm["data"]:
                cm["data"]["hookwarden.toml"] = fn(cm["data"]["hookwarden.toml"])

    def inline_url(d):
        edit_config(
            d,
            lambda t: re.sub(
                r"(?m)^redis_url = .*$", 'redis_url = "redis://:hunter2@redis:6379/0"', t
            ),
        )

    def sled_config(d):
        edit_config(d, lambda t: t.replace('backend = "redis"', 'backend = "sled"'))

    def url_not_mounted(d):
        for vol in dep_spec(d)["volumes"]:
            if vol["name"] == "hookwarden-secrets":
                vol["projected"]["sources"] = [
                    src
                    for src in vol["projected"]["sources"]
                    if src["secret"]["name"] != r["existingSecret"]
                ]

    def unused_store_volume(d):
        dep_spec(d)["volumes"].append(
            {"name": "hookwarden-store", "emptyDir": {"sizeLimit": "1Mi"}}
        )

    def url_in_test_pod(d):
        pod = next(p for p in of_kind(d, "Pod") if p["metadata"]["name"].endswith("-signed"))
        sidecar_volume = next(
            v for v in dep_spec(d)["volumes"] if v["name"] == "hookwarden-secrets"
        )
        pod["spec"]["volumes"] = [
            v for v in pod["spec"]["volumes"] if v["name"] != "hookwarden-secrets"
        ] + [copy.deepcopy(sidecar_volume)]

    return [
        ("store-backend", inline_url, assert_store_backend),
        ("store-backend", sled_config, assert_store_backend),
        ("store-backend", url_in_test_pod, assert_store_backend),
        ("config-consistent", url_not_mounted, assert_config_consistent),
        ("store-volume", unused_store_volume, assert_store_volume),
    ]


def run_mutations(
    chart: helm.Chart,
    values: dict,
    workdir: Path,
    factory: Callable[..., list] = mutations,
    name: str = "mutations",
) -> Outcome:
    out = Outcome(name)
    merged = chart.merge_values(values)
    docs = manifests_of(render(chart, values, NEWEST_KUBE))
    for check, mutate, assertion in factory(docs, merged, workdir):
        broken = copy.deepcopy(docs)
        mutate(broken)

        def expect_rejection(b=broken, a=assertion, m=mutate, check=check):
            try:
                a(b, merged)
            except CheckFailed:
                return
            raise CheckFailed(f"{check} accepted a manifest broken by {m.__name__}")

        out.run(f"{check} rejects {mutate.__name__}", expect_rejection)
    return out


# ---------------------------------------------------------------------------------------
# The embedded-sidecar example and the Dockerfile
# ---------------------------------------------------------------------------------------


def run_embedded_example(workdir: Path, hw: Hookwarden) -> Outcome:
    """Renders helm/examples/embedded-sidecar with this chart as its dependency."""
    out = Outcome("embedded-sidecar example")
    parent = workdir / "embedded-sidecar"
    shutil.copytree(EXAMPLE_DIR, parent)
    shutil.copytree(
        CHART_DIR,
        parent / "charts" / "hookwarden",
        ignore=shutil.ignore_patterns("tests", "ci", "__pycache__"),
    )
    with helm.Chart.load(parent) as chart:
        # The hookwarden dependency's values as the parent's templates see them.
        sub = chart.merge_values({})["hookwarden"]
        for version in (OLDEST_KUBE, NEWEST_KUBE):
            tag = f"k{version}"
            docs = out.run(f"render-{tag}", lambda v=version: manifests_of(render(chart, {}, v)))
            out.run(f"lint-{tag}", lambda v=version: lint({}, v, parent))
            if docs is None:
                continue
            out.run(
                f"kubernetes-validate-{tag}",
                lambda d=docs, v=version: kube_validate(d, v, workdir, "embedded"),
            )
            out.run(f"restricted-security-{tag}", lambda d=docs: assert_restricted(d, sub))
            out.run(f"no-subpath-{tag}", lambda d=docs: assert_no_subpath(d, sub))
            out.run(f"sidecar-wired-{tag}", lambda d=docs: assert_embedded(d))
        docs = manifests_of(render(chart, {}, NEWEST_KUBE))
        mount = sub["secrets"]["mountPath"]
        out.run("hookwarden-check", lambda: hw.check(config_of(docs)[0], mount))
    return out


def assert_embedded(docs: list[dict]) -> None:
    """The parent's own Deployment runs the sidecar with the subchart's ConfigMap."""
    deps = of_kind(docs, "Deployment")
    if len(deps) != 1:
        raise CheckFailed(f"expected only the parent's Deployment, found {len(deps)}")
    spec = deps[0]["spec"]["template"]["spec"]
    hw = hookwarden_container(spec)
    if hw.get("restartPolicy") != "Always" or hw not in spec.get("initContainers", []):
        raise CheckFailed("the included sidecar is not a native sidecar")
    volumes = {v["name"]: v for v in spec["volumes"]}
    cm = volumes["hookwarden-config"]["configMap"]["name"]
    rendered = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == cm]
    if not rendered:
        raise CheckFailed(f"the sidecar mounts ConfigMap {cm}, which the subchart did not render")
    annotation = deps[0]["spec"]["template"]["metadata"]["annotations"].get("checksum/config")
    digest = hashlib.sha256(
        rendered[0]["data"]["hookwarden.toml"].rstrip("\n").encode()
    ).hexdigest()
    if annotation != digest:
        raise CheckFailed("the parent's pods do not carry the config checksum")
    for svc in of_kind(docs, "Service"):
        for port in svc["spec"]["ports"]:
            if port.get("targetPort") != "proxy":
                raise CheckFailed(
                    f"Service {svc['metadata']['name']} does not target the proxy port"
                )
    if of_kind(docs, "Pod"):
        raise CheckFailed("deployment.enabled=false still renders test pods")


def run_dockerfile_checks(hw: Hookwarden) -> Outcome:
    import dockerfile  # noqa: PLC0415  (only needed here)

    out = Outcome("Dockerfile")
    path = REPO_DIR / "Dockerfile"

    def hadolint():
        proc = subprocess.run(
            [shutil.which("hadolint") or "hadolint", "--no-color", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise CheckFailed(
                "hadolint: " + (proc.stdout + proc.stderr).strip().replace("\n", " | ")
            )

    def image_facts():
        cmds = dockerfile.parse_file(str(path))
        stages = [i for i, c in enumerate(cmds) if c.cmd == "FROM"]
        if len(stages) < 2:
            raise CheckFailed("the Dockerfile is not multi-stage")
        final = cmds[stages[-1] :]
        base = final[0].value[0]
        if "distroless" not in base and base != "scratch":
            raise CheckFailed(f"the runtime image {base} is not minimal")
        by = {}
        for c in final:
            by.setdefault(c.cmd, []).append(c)
        users = [" ".join(c.value) for c in by.get("USER", [])]
        if users[-1:] not in ([str(IMAGE_UID)], [f"{IMAGE_UID}:{IMAGE_UID}"]):
            raise CheckFailed(f"the runtime user is not {IMAGE_UID}")
        if [(c.json, c.value) for c in by.get("ENTRYPOINT", [])][-1:] != [(True, ("hookwarden",))]:
            raise CheckFailed('ENTRYPOINT is not ["hookwarden"]')
        if [(c.json, c.value) for c in by.get("CMD", [])][-1:] != [
            (True, ("run", "--config", IMAGE_CONFIG_PATH))
        ]:
            raise CheckFailed(f'CMD is not ["run", "--config", "{IMAGE_CONFIG_PATH}"]')
        copies = " ".join(c.original for c in by.get("COPY", []))
        for target in ("/usr/local/bin/hookwarden", IMAGE_CONFIG_PATH):
            if target not in copies:
                raise CheckFailed(f"nothing is copied to {target}")
        volumes = [v for c in by.get("VOLUME", []) for v in c.value]
        if not volumes:
            raise CheckFailed("the store path is not a VOLUME")
        chart_values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
        if chart_values["store"]["mountPath"] not in volumes:
            raise CheckFailed("the image's VOLUME differs from the chart's store.mountPath")
        if chart_values["proxy"]["securityContext"]["runAsUser"] != IMAGE_UID:
            raise CheckFailed("the chart runs hookwarden under another uid than the image")
        if any(c.cmd == "RUN" for c in final):
            raise CheckFailed("the runtime stage RUNs commands (it has no shell)")

    def config_step():
        """Runs the build stage's config step here, with the binary under test."""
        cmds = dockerfile.parse_file(str(path))
        steps = [
            c for c in cmds if c.cmd == "RUN" and "config/hookwarden.toml" in " ".join(c.value)
        ]
        if len(steps) != 1:
            raise CheckFailed(
                f"expected one RUN step that writes the image's config, found {len(steps)}"
            )
        root = hw.workdir / "image-root"
        (root / "usr/local/bin").mkdir(parents=True, exist_ok=True)
        link = root / "usr/local/bin/hookwarden"
        if not link.exists():
            link.symlink_to(hw.binary)
        script = " ".join(steps[0].value).replace("/out/", f"{root}/")
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", script],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        if proc.returncode != 0:
            raise CheckFailed(
                "the image's config step fails on config/hookwarden.toml: "
                + (proc.stderr.strip() or f"exit {proc.returncode}")
            )
        cfg = tomllib.loads((root / IMAGE_CONFIG_PATH.lstrip("/")).read_text())
        values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
        exposed = {int(p) for c in cmds if c.cmd == "EXPOSE" for p in c.value}
        ports = {port_of(cfg["server"]["listen"]), port_of(cfg["server"]["admin_listen"])}
        if ports != exposed or ports != {values["proxy"]["port"], values["proxy"]["adminPort"]}:
            raise CheckFailed(
                f"image config ports {sorted(ports)}, EXPOSE {sorted(exposed)} and the "
                "chart's proxy.port/adminPort disagree"
            )
        if not cfg["store"]["path"].startswith(values["store"]["mountPath"] + "/"):
            raise CheckFailed("the image's store path is outside its VOLUME")

    def build_context():
        """What `cargo build --bin hookwarden` reads is in the build context and copied."""
        cmds = dockerfile.parse_file(str(path))
        first_stage_end = [i for i, c in enumerate(cmds) if c.cmd == "FROM"][1]
        copied = {
            Path(src).parts[0]
            for c in cmds[:first_stage_end]
            if c.cmd == "COPY" and not any(f.startswith("--from") for f in c.flags)
            for src in c.value[:-1]
        }
        ignore = (REPO_DIR / ".dockerignore").read_text().splitlines()
        included = {line[1:].strip().rstrip("/") for line in ignore if line.startswith("!")}
        manifest = tomllib.loads((REPO_DIR / "Cargo.toml").read_text())
        needed = {"Cargo.toml", "Cargo.lock"}
        needed |= {Path(manifest.get("lib", {}).get("path", "src/lib.rs")).parts[0]}
        needed |= {Path(b.get("path", "src/main.rs")).parts[0] for b in manifest.get("bin", [])}
        build_script = manifest.get("package", {}).get("build")
        if build_script or (REPO_DIR / "build.rs").exists():
            needed.add(Path(build_script or "build.rs").parts[0])
        for table in ("example", "test", "bench"):
            if manifest.get(table):
                raise CheckFailed(
                    f"Cargo.toml declares [[{table}]] targets: the image build "
                    "copies only src/ and config/; extend the Dockerfile"
                )
        if "workspace" in manifest:
            raise CheckFailed("Cargo.toml is a workspace: the Dockerfile copies one package")
        missing = sorted(n for n in needed if n not in copied or n not in included)
        if missing:
            raise CheckFailed(f"the image build does not copy {missing} (COPY and .dockerignore)")

    out.run("hadolint", hadolint)
    out.run("image-facts", image_facts)
    out.run("image-config-step", config_step)
    out.run("image-build-context", build_context)
    return out


def check_values_documented() -> Outcome:
    """Every key in values.yaml has a comment just above it (or a parent's comment block)."""
    out = Outcome("values.yaml")

    def documented():
        lines = (CHART_DIR / "values.yaml").read_text().splitlines()
        missing = []
        for i, line in enumerate(lines):
            m = re.match(r"^(\s*)(- )?([A-Za-z][\w.-]*):", line)
            if not m:
                continue
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            if j < 0 or not lines[j].lstrip().startswith("#"):
                missing.append(f"line {i + 1} ({m.group(3)})")
        if missing:
            raise CheckFailed("keys without a comment: " + ", ".join(missing))

    out.run("every-key-commented", documented)
    return out


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------


def report(outcomes: list[Outcome], verbose: bool) -> tuple[int, int]:
    passed = failed = 0
    for o in outcomes:
        status = "ok" if not o.failed else "FAILED"
        print(f"  {status:6} {o.name}: {len(o.passed)} passed, {len(o.failed)} failed")
        if verbose:
            for c in o.passed:
                print(f"           pass  {c}")
        for c, msg in o.failed:
            print(f"           FAIL  {c}: {msg}")
        for n in o.notes:
            print(f"           note  {n}")
        passed += len(o.passed)
        failed += len(o.failed)
    return passed, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, type=Path, help="the hookwarden binary")
    parser.add_argument("--only", help="run only the ci/ scenario with this file stem")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every passed check")
    args = parser.parse_args()
    binary = args.bin.resolve()
    if not os.access(binary, os.X_OK):
        print(f"check_chart: {binary} is not an executable hookwarden binary", file=sys.stderr)
        return 2

    helm.disable_logging()
    print(
        f"helm engine {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__}); "
        f"kubernetes-validate schemas {OLDEST_KUBE} and {NEWEST_KUBE}; hookwarden {binary}"
    )
    all_passed = all_failed = 0
    with tempfile.TemporaryDirectory(prefix="hookwarden-chart-") as tmp:
        work = Path(tmp)
        hw = Hookwarden(binary, work)
        ci_files = sorted((CHART_DIR / "ci").glob("*.yaml"))
        if args.only:
            ci_files = [f for f in ci_files if f.stem == args.only]
        with helm.Chart.load(CHART_DIR) as chart:
            print("\nci/ scenarios (every check must pass):")
            outcomes = []
            for f in ci_files:
                values = yaml.safe_load(f.read_text()) or {}
                outcomes.append(run_scenario(f"ci/{f.name}", values, chart, hw, work))
            p, fl = report(outcomes, args.verbose)
            all_passed, all_failed = all_passed + p, all_failed + fl

            proofs = Outcome("broken values rejected")
            if not args.only:
                print("\nbroken values (each must be rejected by the check its first line names):")
            for f in [] if args.only else sorted(BROKEN_DIR.glob("*.yaml")):
                want = expected_failure(f)
                values = yaml.safe_load(f.read_text()) or {}
                try:
                    got = run_scenario(f"broken/{f.name}", values, chart, hw, work)
                except Exception as e:  # noqa: BLE001  a crash is not a rejection
                    got = Outcome(f.name, failed=[("crash", repr(e))])
                rejected_by = sorted({re.sub(r"-k[0-9.]+$", "", c) for c in got.failed_checks()})

                def verdict(want=want, rejected_by=rejected_by, got=got, name=f.name):
                    if want not in rejected_by:
                        raise CheckFailed(
                            f"{name}: expected the {want} check to fail; failed: "
                            f"{rejected_by or 'none'}"
                        )
                    first = next(m for c, m in got.failed if re.sub(r"-k[0-9.]+$", "", c) == want)
                    print(f"           {name}: rejected by {want}: {first[:200]}")

                proofs.run(f"{f.name} rejected by {want}", verdict)
            if not args.only:
                p, fl = report([proofs], args.verbose)
                all_passed, all_failed = all_passed + p, all_failed + fl

                print("\nassertions against manifests broken on purpose:")
                defaults = yaml.safe_load((CHART_DIR / "ci" / "classic.yaml").read_text())
                redis = yaml.safe_load((CHART_DIR / "ci" / "redis-store.yaml").read_text())
                p, fl = report(
                    [
                        run_mutations(chart, defaults, work),
                        run_mutations(
                            chart, redis, work, redis_mutations, "mutations (Redis store)"
                        ),
                    ],
                    args.verbose,
                )
                all_passed, all_failed = all_passed + p, all_failed + fl

        if not args.only:
            print("\nembedded sidecar, Dockerfile, values documentation:")
            p, fl = report(
                [
                    run_embedded_example(work, hw),
                    run_dockerfile_checks(hw),
                    check_values_documented(),
                ],
                args.verbose,
            )
            all_passed, all_failed = all_passed + p, all_failed + fl

        if not hw.knows_expect_status:
            print(
                "\nnote: this hookwarden binary's `sign` has no --expect-status: with "
                "tests.expectStatus=true (the default) the `helm test` pods will fail until it has."
            )
    print(f"\nchart checks: {all_passed} passed, {all_failed} failed")
    return 0 if all_failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
