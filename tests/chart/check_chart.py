#!/usr/bin/env python3
"""Checks of the rendered ferromq Helm chart, with no cluster (`make chart-check`).

Takes the folder `helm template` wrote into: `default.yaml` (the chart's default values) and
`NAME.yaml` for each `charts/ferromq/ci/NAME-values.yaml`. For every object it checks:

* the Kubernetes OpenAPI schema of its kind (kubernetes-validate, strict: unknown fields are
  errors), for the oldest Kubernetes the chart supports and the newest the package knows; the
  kinds of KEDA and the Prometheus Operator (ScaledObject, TriggerAuthentication, ServiceMonitor,
  PrometheusRule) against their CRDs' openAPIV3Schema, copied into tests/chart/schemas/ (unknown
  fields are errors there too); ferromq's own kinds are checked by check_examples.py;
* the chart's own rules: selectors that find their pods, ports and Secrets that exist, hardened
  pods, the controller's RBAC exactly as the code needs it, the data plane's public URL, Redis
  with AOF, the Grafana dashboard (valid JSON, every query naming only metrics ferromq exposes,
  through the data source variable), the alerts (thresholds from the values, metrics ferromq
  exposes, series of the rendered Services), and that each value turns its feature on or off.

With --keda-examples it checks the KEDA example (examples/keda/) the same way, and that it fits
together: the ScaledObject scales the Deployment given beside it on the queue that Deployment
consumes, reads `queue.size` from ferromq's answer, authenticates with the Secret the consumer
uses, or asks Prometheus only for metrics ferromq exposes.

It also runs `helm template` with values the chart must refuse, and checks that each validator
refuses a bad object (a Deployment, a ScaledObject, a query naming an unknown metric), so a
check that cannot fail is noticed.
"""

import argparse
import base64
import copy
import json
import pathlib
import re
import subprocess
import sys
import textwrap

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, latest_version

from check_examples import DNS_SUBDOMAIN, to_json_schema

RELEASE = "ferromq"
NAMESPACE = "ferromq"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion >=1.30) and the newest.
KUBE_VERSIONS = ["1.30.0", latest_version()]
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}

# What the default values render, by kind and name.
DEFAULT_OBJECTS = {
    ("CustomResourceDefinition", "queues.ferromq.dev"),
    ("CustomResourceDefinition", "subscriptions.ferromq.dev"),
    ("ServiceAccount", "ferromq"),
    ("ServiceAccount", "ferromq-controller"),
    ("Secret", "ferromq-redis"),
    ("Secret", "ferromq-tokens"),
    ("ClusterRole", "ferromq-ferromq-controller"),
    ("ClusterRoleBinding", "ferromq-ferromq-controller"),
    ("Role", "ferromq-controller-leader-election"),
    ("RoleBinding", "ferromq-controller-leader-election"),
    ("Service", "ferromq"),
    ("Service", "ferromq-controller-metrics"),
    ("Service", "ferromq-redis"),
    ("Service", "ferromq-redis-headless"),
    ("Deployment", "ferromq"),
    ("Deployment", "ferromq-controller"),
    ("StatefulSet", "ferromq-redis"),
    ("PodDisruptionBudget", "ferromq"),
    ("PodDisruptionBudget", "ferromq-controller"),
}

# The controller's rules over the watched namespaces, from src/k8s/controller.rs and
# kube-runtime: watches (list, watch), the finalizer (JSON patch), status (server-side apply),
# Events (events.k8s.io: create, then patch for a repeated one).
CONTROLLER_RULES = {
    ("ferromq.dev", "queues", "list"), ("ferromq.dev", "queues", "watch"),
    ("ferromq.dev", "subscriptions", "list"), ("ferromq.dev", "subscriptions", "watch"),
    ("ferromq.dev", "queues", "patch"),
    ("ferromq.dev", "queues/status", "patch"), ("ferromq.dev", "subscriptions/status", "patch"),
    ("events.k8s.io", "events", "create"), ("events.k8s.io", "events", "patch"),
}
# kube-lease-manager 0.13: get, create when missing, and patches to take, renew and release.
LEASE_RULES = {("coordination.k8s.io", "leases", "create", None),
               ("coordination.k8s.io", "leases", "get", "NAME"),
               ("coordination.k8s.io", "leases", "patch", "NAME")}

# CRDs of other projects whose objects the chart renders or the KEDA example holds (copies, with
# their origin in schemas/README.md).
SCHEMAS = pathlib.Path(__file__).resolve().parent / "schemas"
CRD_FILES = ["keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml",
             "monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml"]

# Every series ferromq exposes, as `curl /metrics` shows them (OpenMetrics text: counters with
# _total, the histogram as _bucket, _sum and _count), with their labels: `ferromq serve`
# (src/metrics.rs), then `ferromq controller` (src/k8s/controller.rs).
METRICS = {
    "ferromq_http_requests_total": {"method", "status"},
    "ferromq_messages_total": {"operation"},
    "ferromq_push_attempts_total": {"outcome", "status"},
    "ferromq_push_latency_seconds_bucket": {"le"},
    "ferromq_push_latency_seconds_sum": set(),
    "ferromq_push_latency_seconds_count": set(),
    "ferromq_store_errors_total": {"kind"},
    "ferromq_queue_depth": {"project", "queue"},
    "ferromq_queue_reserved": {"project", "queue"},
    "ferromq_queue_oldest_message_age_seconds": {"project", "queue"},
    "ferromq_controller_reconciliations_total": {"kind", "result"},
    "ferromq_declared_queue_depth": {"project", "queue"},
    "ferromq_declared_queue_reserved": {"project", "queue"},
    "ferromq_declared_queue_oldest_message_age_seconds": {"project", "queue"},
}
# The values a label takes, where the code fixes them.
STATUS_CLASSES = {"1xx", "2xx", "3xx", "4xx", "5xx"}
LABEL_VALUES = {
    ("ferromq_http_requests_total", "status"): STATUS_CLASSES,
    ("ferromq_messages_total", "operation"): {"posted", "reserved", "deleted", "released", "touched"},
    ("ferromq_push_attempts_total", "outcome"): {"delivered", "accepted", "failed"},
    ("ferromq_push_attempts_total", "status"): STATUS_CLASSES | {"none"},
    ("ferromq_store_errors_total", "kind"): {"unavailable", "error"},
    ("ferromq_controller_reconciliations_total", "kind"): {"Queue", "Subscription"},
    ("ferromq_controller_reconciliations_total", "result"): {"ok", "error"},
}
# Labels Prometheus adds to what a ServiceMonitor scrapes.
SCRAPE_LABELS = {"namespace", "job", "pod", "instance", "service", "endpoint", "container"}
ALL_LABELS = set().union(*METRICS.values()) | SCRAPE_LABELS
PROMQL_FUNCTIONS = {
    "sum", "max", "min", "avg", "count", "topk", "bottomk", "quantile", "rate", "irate", "increase",
    "delta", "idelta", "deriv", "histogram_quantile", "abs", "clamp_min", "clamp_max", "max_over_time",
    "min_over_time", "avg_over_time", "absent", "vector", "scalar", "time", "round", "label_values",
}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                   "group_left", "group_right", "inf", "nan"}
# What GET /3/projects/p/queues/q answered (ferromq serve, a queue with one message): KEDA's
# metrics-api trigger reads its valueLocation in it.
QUEUE_REPLY = {"queue": {"id": "a89bd694bd1d4781a8203450", "message_expiration": 604800, "message_timeout": 60,
                         "name": "q", "project_id": "p", "size": 1, "total_messages": 1, "type": "pull"}}
QUEUE_URL = re.compile(r"^https?://[^/\s]+/3/projects/([A-Za-z0-9_.-]{1,64})/queues/([^/\s?]+)$")

# Values the chart must refuse, each with a part of the error it must give.
REFUSED = [
    (["--set", "redis.bundled=false"], "set redis.url or redis.existingSecret"),
    (["--set", "redis.url=redis://elsewhere:6379"], "set redis.bundled=false"),
    (["--set", "controller.watchNamespace=queues"], "needs rbac.clusterWide=false"),
    (["--set", "server.replcas=3"], "additional properties 'replcas' not allowed"),
    (["--set", "auth.tokens[0].token=two words"], "/auth/tokens/0/token"),
    (["--set", "redis.appendfsync=no"], "/redis/appendfsync"),
    (["--set", "controller.serviceAccount.create=false"], "default ServiceAccount"),
    (["--set", "networkPolicy.enabled=true", "--set", "metrics.serviceMonitor.enabled=true"],
     "set networkPolicy.metricsFrom"),
    (["--set", "ingress.enabled=true"], "ingress.enabled needs ingress.hosts"),
    (["--set", "server.autoscaling.enabled=true", "--set", "server.autoscaling.minReplicas=9",
      "--set", "server.autoscaling.maxReplicas=3"], "minReplicas is above maxReplicas"),
    (["--set", "server.podDisruptionBudget.maxUnavailable=foo"], "maxUnavailable"),
    (["--set", "redis.bundled=false", "--set", "redis.url=redis://r:6379",
      "--set", "redis.password=x"], "redis.password is for the bundled Redis"),
    (["--set", "auth.tokens[0].token=t", "--set", "auth.tokens[0].projects={*,shop}"],
     "not both"),
    (["--set", "listenHost=localhost:80"], "/listenHost"),
    (["--set", "redis.architecture=replication", "--set", "redis.bundled=false"], "set redis.sentinels"),
    (["--set", "redis.sentinels=s:26379"], "set redis.architecture=replication and redis.bundled=false"),
    (["--set", "redis.architecture=replication", "--set", "redis.cluster=true"], "redis.cluster is for"),
    (["--set", "redis.bundled=false", "--set", "redis.architecture=replication", "--set", "redis.sentinels=s:1",
      "--set", "redis.url=redis://r:6379"], "redis.url is for architecture=standalone"),
    (["--set", "redis.sentinelPassword=x"], "redis.sentinelPassword is for external Sentinels"),
    (["--set", "redis.minReplicasAck=1"], "the bundled standalone Redis has none"),
    (["--set", "redis.architecture=replication", "--set", "redis.minReplicasAck=2"], "replicas to spare"),
    (["--set", "redis.architecture=replication", "--set", "redis.replication.quorum=1"], "must be a majority"),
    (["--set", "redis.architecture=replication", "--set", "redis.replication.quorum=3"], "must be a majority"),
    (["--set", "redis.architecture=replication", "--set", "redis.persistence.enabled=false"],
     "needs redis.persistence.enabled"),
    (["--set", "redis.bundled=false", "--set", "redis.url=redis://r:6379", "--set", "redis.caSecret=ca"],
     "redis.caSecret without TLS"),
    (["--set", "redis.architecture=replication", "--set", "redis.replication.maxUnavailable=2"],
     "leave a majority"),
    (["--set", "redis.architecture=replication", "--set", "redis.replication.minReplicasToWrite=2"],
     "minReplicasToWrite must be at most"),
    (["--set", "redis.architecture=replication", "--set", "redis.replication.nodes=2"], "/redis/replication/nodes"),
    (["--set", "redis.architecture=cluster"], "/redis/architecture"),
    (["--set", "redis.tls=true"], "redis.tls is for external Sentinels"),
    (["--set", "redis.caSecret=ca"], "redis.caSecret is for an external Redis"),
    (["--set", "redis.bundled=false", "--set", "redis.architecture=replication", "--set", "redis.sentinels=sentinel"],
     "/redis/sentinels"),
    (["--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.prometheusRule.backlogGrowing.enabled=false",
      "--set", "metrics.prometheusRule.oldestMessage.enabled=false", "--set", "metrics.prometheusRule.pushFailures.enabled=false",
      "--set", "metrics.prometheusRule.storeErrors.enabled=false", "--set", "metrics.prometheusRule.serverErrors.enabled=false",
      "--set", "metrics.prometheusRule.reconcileErrors.enabled=false"], "with every alert off"),
    (["--set", "metrics.prometheusRule.oldestMessage.for=5 minutes"], "/metrics/prometheusRule/oldestMessage/for"),
    (["--set", "metrics.prometheusRule.pushFailures.ratio=5"], "/metrics/prometheusRule/pushFailures/ratio"),
    (["--set", "metrics.grafanaDashboard.namespace=Monitoring"], "/metrics/grafanaDashboard/namespace"),
]


class Failures(list):
    def check(self, condition, scenario, message):
        if not condition:
            self.append(f"{scenario}: {message}")
        return condition


def deep_merge(base, over):
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def matches(selector, labels):
    """A LabelSelector (matchLabels and matchExpressions) against a set of labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        present, value = expr["key"] in labels, labels.get(expr["key"])
        op = expr["operator"]
        if (op == "In" and value not in expr["values"]) or (op == "NotIn" and value in expr["values"]) \
                or (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def env_of(container):
    return {e["name"]: e for e in container.get("env") or []}


def python_patterns(node):
    """Go's regular expressions take flags anywhere (`^(?i)(abort|warn)?$`), Python's only at the
    start: move them there."""
    if isinstance(node, list):
        return [python_patterns(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: python_patterns(v) for k, v in node.items()}
    if isinstance(out.get("pattern"), str):
        out["pattern"] = re.sub(r"^\^\((\?[a-z]+)\)", r"(\1)^", out["pattern"])
    return out


def crd_schemas():
    """{(apiVersion, kind): JSON schema} of every served version of the CRDs in schemas/, as the API
    server reads them with strict field validation: unknown fields are errors wherever the schema
    does not preserve them, and metadata is the part of ObjectMeta the chart and examples set."""
    schemas = {}
    for name in CRD_FILES:
        for crd in yaml.safe_load_all((SCHEMAS / name).read_text()):
            if not crd:
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served"):
                    continue
                api = f"{group}/{version['name']}"
                schema = python_patterns(to_json_schema(version["schema"]["openAPIV3Schema"]))
                strings = {"type": "object", "additionalProperties": {"type": "string"}}
                schema["properties"].update({
                    "apiVersion": {"const": api},
                    "kind": {"const": kind},
                    "metadata": {"type": "object", "required": ["name"], "additionalProperties": False,
                                 "properties": {"name": {"type": "string", "maxLength": 253, "pattern": DNS_SUBDOMAIN},
                                                "namespace": {"type": "string"}, "labels": strings,
                                                "annotations": strings}},
                })
                schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
                jsonschema.Draft7Validator.check_schema(schema)
                schemas[(api, kind)] = jsonschema.Draft7Validator(schema)
    return schemas


CRD_SCHEMAS = crd_schemas()


def schema_check(fail, scenario, obj):
    api, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    if api.startswith("ferromq.dev/"):
        return
    if (api, kind) in CRD_SCHEMAS:
        name = (obj.get("metadata") or {}).get("name")
        for err in CRD_SCHEMAS[(api, kind)].iter_errors(obj):
            path = "/".join(str(p) for p in err.absolute_path)
            fail.append(f"{scenario}: {kind}/{name} at '{path}' (CRD schema): {err.message}")
        return
    if api.split("/")[0] in {"keda.sh", "monitoring.coreos.com"}:
        fail.append(f"{scenario}: no CRD schema in {SCHEMAS} for {api} {kind}")
        return
    for version in KUBE_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except SchemaNotFoundError:
            fail.append(f"{scenario}: no Kubernetes {version} schema for {api} {kind}")
        except ValidationError as err:
            path = "/".join(str(p) for p in err.absolute_path)
            fail.append(f"{scenario}: {kind}/{obj['metadata']['name']} at '{path}' "
                        f"(Kubernetes {version}): {err.message}")


def check_scenario(fail, scenario, objects, values, external_secrets, chart, app_version):
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)

    def named(kind, name, namespace=NAMESPACE):
        for obj in by_kind.get(kind, []):
            if obj["metadata"]["name"] == name and obj["metadata"].get("namespace", namespace) == namespace:
                return obj
        return None

    ok = fail.check
    seen = set()
    for obj in objects:
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace"), meta["name"])
        ok(key not in seen, scenario, f"{key} rendered twice")
        seen.add(key)
        if obj["kind"] not in CLUSTER_SCOPED:
            ok(meta.get("namespace"), scenario, f"{obj['kind']}/{meta['name']} has no namespace")
        if obj["kind"] != "CustomResourceDefinition":
            labels = meta.get("labels") or {}
            ok(labels.get("app.kubernetes.io/instance") == RELEASE and labels.get("app.kubernetes.io/component"),
               scenario, f"{obj['kind']}/{meta['name']} lacks the release and component labels")

    crds = {o["metadata"]["name"] for o in by_kind.get("CustomResourceDefinition", [])}
    ok(crds == {"queues.ferromq.dev", "subscriptions.ferromq.dev"}, scenario, f"CRDs rendered: {sorted(crds)}")

    secrets = {o["metadata"]["name"]: set((o.get("data") or {}) | (o.get("stringData") or {}))
               for o in by_kind.get("Secret", [])}

    def secret_has(name, key, what):
        if name in external_secrets:
            ok(key in external_secrets[name], scenario, f"{what}: key {key} of existing Secret {name}")
        else:
            ok(key in secrets.get(name, ()), scenario, f"{what}: Secret {name} with key {key} is not rendered")

    workloads = {o["metadata"]["name"]: o for k in WORKLOAD_KINDS for o in by_kind.get(k, [])}
    service_accounts = {o["metadata"]["name"]: o for o in by_kind.get("ServiceAccount", [])}

    def pods_of(selector):
        return [w for w in workloads.values() if matches(selector, w["spec"]["template"]["metadata"]["labels"])]

    def port_names(workload):
        return {p["name"] for c in workload["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}

    for name, w in workloads.items():
        what = f"{w['kind']}/{name}"
        spec, pod = w["spec"], w["spec"]["template"]["spec"]
        labels = w["spec"]["template"]["metadata"]["labels"]
        ok(matches(spec["selector"], labels), scenario, f"{what}: selector misses its own pods")
        sa = pod.get("serviceAccountName", "default")
        ok(sa in service_accounts, scenario, f"{what}: ServiceAccount {sa} not rendered")
        psc = pod.get("securityContext") or {}
        ok(psc.get("runAsNonRoot") is True and (psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
           scenario, f"{what}: pod must run as non-root with the RuntimeDefault seccomp profile")
        for spread in pod.get("topologySpreadConstraints") or []:
            ok(matches(spread.get("labelSelector") or {}, labels), scenario,
               f"{what}: topology spread on {spread['topologyKey']} does not select its pods")
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        for vol in volumes.values():
            if "secret" in vol:
                for item in vol["secret"].get("items") or []:
                    secret_has(vol["secret"]["secretName"], item["key"], f"{what} volume {vol['name']}")
        for c in pod["containers"]:
            cwhat = f"{what} container {c['name']}"
            csc = c.get("securityContext") or {}
            caps = csc.get("capabilities") or {}
            ok(csc.get("allowPrivilegeEscalation") is False and csc.get("readOnlyRootFilesystem") is True
               and not csc.get("privileged") and "ALL" in (caps.get("drop") or []) and not caps.get("add"),
               scenario, f"{cwhat}: needs no privilege escalation, a read-only root fs, all capabilities dropped")
            ok((c.get("resources") or {}).get("requests"), scenario, f"{cwhat}: no resource requests")
            names = {p["name"] for p in c.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe"):
                ok(probe in c, scenario, f"{cwhat}: no {probe}")
                handler = (c.get(probe) or {}).get("httpGet") or (c.get(probe) or {}).get("tcpSocket")
                if handler and isinstance(handler["port"], str):
                    ok(handler["port"] in names, scenario, f"{cwhat}: {probe} port {handler['port']} not declared")
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    secret_has(ref["name"], ref["key"], f"{cwhat} env {e['name']}")
            for mount in c.get("volumeMounts") or []:
                ok(mount["name"] in volumes or mount["name"] in
                   {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []},
                   scenario, f"{cwhat}: volume {mount['name']} not declared")

    for svc in by_kind.get("Service", []):
        selected = pods_of({"matchLabels": svc["spec"].get("selector") or {}})
        ok(len(selected) == 1, scenario, f"Service/{svc['metadata']['name']} selects {len(selected)} workloads")
        for p in svc["spec"]["ports"]:
            if selected and isinstance(p.get("targetPort"), str):
                ok(p["targetPort"] in port_names(selected[0]), scenario,
                   f"Service/{svc['metadata']['name']}: target port {p['targetPort']} not declared")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        ok(len(pods_of(pdb["spec"]["selector"])) == 1, scenario, f"PDB/{pdb['metadata']['name']} selects no workload")
    for np in by_kind.get("NetworkPolicy", []):
        selected = pods_of(np["spec"]["podSelector"])
        ok(len(selected) == 1, scenario, f"NetworkPolicy/{np['metadata']['name']} selects {len(selected)} workloads")
        for rule in np["spec"].get("ingress") or []:
            for p in rule.get("ports") or []:
                if selected and isinstance(p["port"], str):
                    ok(p["port"] in port_names(selected[0]), scenario,
                       f"NetworkPolicy/{np['metadata']['name']}: port {p['port']} not declared")
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        target = hpa["spec"]["scaleTargetRef"]
        ok(named(target["kind"], target["name"]), scenario, f"HPA target {target['name']} not rendered")
    for sm in by_kind.get("ServiceMonitor", []):
        services = [s for s in by_kind.get("Service", []) if matches(sm["spec"]["selector"], s["metadata"]["labels"])]
        ok(len(services) == 1, scenario, f"ServiceMonitor selects {len(services)} Services")
        for ep in sm["spec"]["endpoints"]:
            ok(services and ep["port"] in {p["name"] for p in services[0]["spec"]["ports"]},
               scenario, f"ServiceMonitor port {ep['port']} not on the Service")
    for ing in by_kind.get("Ingress", []):
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                svc = path["backend"]["service"]
                target = named("Service", svc["name"])
                ok(target and svc["port"]["name"] in {p["name"] for p in target["spec"]["ports"]},
                   scenario, f"Ingress backend {svc['name']}:{svc['port']} not rendered")

    # RBAC: bindings point at rendered roles and service accounts, nothing is a wildcard.
    for kind in ("ClusterRole", "Role"):
        for role in by_kind.get(kind, []):
            for rule in role["rules"]:
                ok("*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], scenario,
                   f"{kind}/{role['metadata']['name']} has a wildcard")
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for binding in by_kind.get(kind, []):
            ns = binding["metadata"].get("namespace", NAMESPACE)
            ok(named(binding["roleRef"]["kind"], binding["roleRef"]["name"], ns), scenario,
               f"{kind}/{binding['metadata']['name']}: role {binding['roleRef']['name']} not rendered")
            for subject in binding["subjects"]:
                ok(subject["kind"] == "ServiceAccount" and subject["name"] in service_accounts
                   and subject["namespace"] == NAMESPACE, scenario, f"{kind}: subject {subject} not rendered")

    server = workloads.get("ferromq")
    controller = workloads.get("ferromq-controller")
    redis = workloads.get("ferromq-redis")
    v = values

    # The data plane.
    if ok(server, scenario, "no data plane Deployment"):
        pod = server["spec"]["template"]["spec"]
        c = pod["containers"][0]
        env = env_of(c)
        ok(c["args"] == ["serve"], scenario, "data plane does not run `ferromq serve`")
        ok(pod.get("automountServiceAccountToken") is False, scenario, "data plane mounts an API token")
        svc = named("Service", "ferromq")
        port = svc["spec"]["ports"][0]["port"] if svc else None
        scheme = "https" if v["server"]["tls"]["secretName"] else "http"
        want = v["server"]["publicUrl"] or f"{scheme}://ferromq.{NAMESPACE}.svc.cluster.local:{port}"
        if v["server"]["tls"]["secretName"]:
            probes = [c["livenessProbe"]["httpGet"], c["readinessProbe"]["httpGet"]]
            ok(all(p.get("scheme") == "HTTPS" for p in probes), scenario, "probes of a TLS data plane are not HTTPS")
            ok("FERROMQ_TLS_CERT" in env and "FERROMQ_TLS_KEY" in env, scenario, "TLS files not configured")
        ok(env.get("FERROMQ_PUBLIC_URL", {}).get("value") == want, scenario,
           f"FERROMQ_PUBLIC_URL is {env.get('FERROMQ_PUBLIC_URL')}, not {want}")
        http = [p["containerPort"] for p in c["ports"] if p["name"] == "http"]
        ok(env["FERROMQ_LISTEN"]["value"] == f"0.0.0.0:{http[0]}", scenario, "FERROMQ_LISTEN is not the http port")
        tokens_file = env.get("FERROMQ_TOKENS_FILE", {}).get("value", "")
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        tokens_volume = next((vol for vol in pod["volumes"] if "secret" in vol), None)
        ok(tokens_volume and tokens_file == f"{mounts[tokens_volume['name']]['mountPath']}/"
           f"{tokens_volume['secret']['items'][0]['path']}" and mounts[tokens_volume["name"]].get("readOnly"),
           scenario, f"FERROMQ_TOKENS_FILE {tokens_file!r} is not the mounted tokens Secret")
        ok(("FERROMQ_NO_PUSH" in env) == (not v["server"]["push"]), scenario, "server.push not honoured")
        ok(("replicas" in server["spec"]) != v["server"]["autoscaling"]["enabled"], scenario,
           "Deployment replicas must be left to the HPA, and only then")
        ok(bool(pod.get("topologySpreadConstraints")), scenario, "data plane has no topology spread")
        image = c["image"]
        want_image = (f"{v['image']['repository']}@{v['image']['digest']}" if v["image"]["digest"]
                      else f"{v['image']['repository']}:{v['image']['tag'] or app_version}")
        ok(image == want_image, scenario, f"data plane image {image}, not {want_image}")

    # Tokens generated by the chart parse as the data plane's tokens file.
    tokens_secret = named("Secret", "ferromq-tokens")
    ok(bool(tokens_secret) == (not v["auth"]["existingSecret"]), scenario, "tokens Secret rendered iff not existing")
    if tokens_secret:
        text = base64.b64decode(tokens_secret["data"]["tokens"]).decode()
        entries = [e for line in text.splitlines() for e in re.split(r"[;\s]+", line.split("#")[0]) if e]
        ok(entries and all(re.fullmatch(r"[^=]+=(\*|[^=,]+(,[^=,]+)*)", e) for e in entries), scenario,
           f"tokens file does not parse: {text!r}")
        if v["auth"]["tokens"]:
            want = [f"{t['token']}={','.join(t.get('projects') or ['*'])}" for t in v["auth"]["tokens"]]
            ok(entries == want, scenario, f"tokens file {entries} is not auth.tokens {want}")

    # Redis: bundled (one node, or a primary with replicas and Sentinels) with AOF and a generated
    # password, or external (a URL, or Sentinels).
    replicated = v["redis"]["architecture"] == "replication"
    bundled = v["redis"]["bundled"]
    nodes = v["redis"]["replication"]["nodes"] if replicated else 1
    hosts = [f"ferromq-redis-{i}.ferromq-redis-headless.{NAMESPACE}.svc.cluster.local" for i in range(nodes)]
    redis_secret = named("Secret", "ferromq-redis")
    ok(bool(redis) == bundled, scenario, "Redis StatefulSet rendered iff redis.bundled")
    ok(bool(redis_secret) == (not v["redis"]["existingSecret"]), scenario, "Redis Secret rendered iff not existing")
    if redis_secret:
        data = {k: base64.b64decode(x).decode() for k, x in (redis_secret.get("data") or {}).items()}
        if bundled:
            ok(re.fullmatch(r"[A-Za-z0-9]{32}", data.get("redis-password", "")), scenario, "no generated password")
            if replicated:
                ok(set(data) == {"redis-password"}, scenario, f"replicated Redis Secret holds {sorted(data)}")
            else:
                ok(data.get("redis-url") == f"redis://:{data.get('redis-password')}@ferromq-redis:6379", scenario,
                   f"REDIS_URL {data.get('redis-url')} does not carry the password to the Redis Service")
            ok(bool(named("Service", "ferromq-redis")) != replicated, scenario,
               "a Redis Service for REDIS_URL iff one standalone node")
        elif replicated:
            want = {k: x for k, x in (("redis-password", v["redis"]["password"]),
                                       ("sentinel-password", v["redis"]["sentinelPassword"])) if x}
            ok(data == want, scenario, f"external Sentinels' Secret holds {sorted(data)}, not {sorted(want)}")
        else:
            ok(data == {"redis-url": v["redis"]["url"]}, scenario, "external redis.url not in its Secret")
    scripts = named("ConfigMap", "ferromq-redis-scripts")
    ok(bool(scripts) == (bundled and replicated), scenario, "Redis scripts ConfigMap iff a bundled replicated Redis")
    if scripts:
        ok(scripts["data"].get("redis-node.sh") == (chart / "files" / "redis-node.sh").read_text(), scenario,
           "the scripts ConfigMap is not files/redis-node.sh")
    if redis:
        pod = redis["spec"]["template"]["spec"]
        containers = {c["name"]: c for c in pod["containers"]}
        c = containers["redis"]
        args = " ".join(a if a else '""' for a in c["args"])
        for wanted in ("--appendonly yes", f"--appendfsync {v['redis']['appendfsync']}", "--dir /data",
                       "--maxmemory-policy noeviction"):
            ok(wanted in args, scenario, f"redis-server args lack {wanted}")
        ok("REDIS_PASSWORD" in env_of(c), scenario, "Redis has no password from a Secret")
        claims = redis["spec"].get("volumeClaimTemplates") or []
        ok(bool(claims) == v["redis"]["persistence"]["enabled"], scenario, "PVC iff redis.persistence.enabled")
        ok(redis["spec"]["replicas"] == nodes, scenario, f"{redis['spec']['replicas']} Redis nodes, not {nodes}")
        headless = named("Service", "ferromq-redis-headless")
        ok(headless and redis["spec"]["serviceName"] == "ferromq-redis-headless", scenario, "no governing Service")
        if not replicated:
            ok(c["command"] == ["redis-server"] and "--requirepass $(REDIS_PASSWORD)" in args, scenario,
               "standalone Redis must run redis-server with the Secret's password")
            ok(set(containers) == {"redis"}, scenario, f"standalone Redis pod runs {sorted(containers)}")
        else:
            r = v["redis"]["replication"]
            ok(set(containers) == {"redis", "sentinel"}, scenario, f"replicated Redis pod runs {sorted(containers)}")
            ok(redis["spec"]["podManagementPolicy"] == "Parallel", scenario, "Redis nodes must start in parallel")
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            volumes = {vol["name"]: vol for vol in pod["volumes"]}
            ok(volumes.get(mounts.get("/scripts"), {}).get("configMap", {}).get("name") == "ferromq-redis-scripts",
               scenario, "the scripts are not mounted at /scripts")
            for name, command in (("redis", ["sh", "/scripts/redis-node.sh", "redis"]),
                                  ("sentinel", ["sh", "/scripts/redis-node.sh", "sentinel"])):
                node = containers[name]
                env = env_of(node)
                ok(node["command"] == command, scenario, f"{name} container runs {node['command']}")
                ok(env.get("NODES", {}).get("value") == " ".join(hosts), scenario, f"{name}: NODES is not {hosts}")
                ok(env.get("SELF", {}).get("value") ==
                   f"$(POD_NAME).ferromq-redis-headless.{NAMESPACE}.svc.cluster.local"
                   and list(env).index("POD_NAME") < list(env).index("SELF"), scenario,
                   f"{name}: SELF is not this pod's name under the headless Service")
                for key, want in (("QUORUM", r["quorum"]), ("DOWN_AFTER_MS", r["downAfterMilliseconds"]),
                                  ("MASTER_NAME", v["redis"]["masterName"])):
                    ok(env.get(key, {}).get("value") == str(want), scenario, f"{name}: {key} is not {want}")
                ref = env.get("REDIS_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef", {})
                ok(ref.get("name") == (v["redis"]["existingSecret"] or "ferromq-redis"), scenario,
                   f"{name}: REDIS_PASSWORD from {ref}")
            if r["minReplicasToWrite"]:
                ok(f"--min-replicas-to-write {r['minReplicasToWrite']}" in args, scenario, "no min-replicas-to-write")
            ok(c["lifecycle"]["preStop"]["exec"]["command"] == ["sh", "/scripts/redis-node.sh", "handover"],
               scenario, "the primary does not hand over before it stops")
            ok(containers["sentinel"]["lifecycle"]["preStop"]["exec"]["command"]
               == ["sh", "/scripts/redis-node.sh", "linger"], scenario, "the Sentinel does not stay for the handover")
            ok(headless["spec"].get("publishNotReadyAddresses") is True and
               {p["name"] for p in headless["spec"]["ports"]} == {"redis", "sentinel"}, scenario,
               "the headless Service must publish unready pods, with the redis and sentinel ports")
            anti = (pod.get("affinity") or {}).get("podAntiAffinity") or {}
            terms = (anti.get("requiredDuringSchedulingIgnoredDuringExecution") if r["antiAffinity"] == "hard"
                     else [t["podAffinityTerm"] for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []])
            ok(terms and all(t["topologyKey"] == "kubernetes.io/hostname"
                             and matches(t["labelSelector"], redis["spec"]["template"]["metadata"]["labels"])
                             for t in terms), scenario, f"no {r['antiAffinity']} anti-affinity between Redis nodes")
            pdb = named("PodDisruptionBudget", "ferromq-redis")
            ok(pdb and pdb["spec"]["maxUnavailable"] == r["maxUnavailable"] and nodes - r["maxUnavailable"] > nodes // 2,
               scenario, "the Redis PDB must keep a majority of the nodes up")
    ack = v["redis"]["minReplicasAck"]
    ack = str(ack if ack != "" else (1 if replicated else 0))
    for w in (server, controller):
        if not w:
            continue
        env = env_of(w["spec"]["template"]["spec"]["containers"][0])
        what = w["metadata"]["name"]
        ok(env.get("FERROMQ_MIN_REPLICAS_ACK", {}).get("value") == ack, scenario, f"{what}: FERROMQ_MIN_REPLICAS_ACK not {ack}")
        ok(env.get("FERROMQ_REPLICA_ACK_TIMEOUT", {}).get("value") == str(v["redis"]["replicaAckTimeout"]),
           scenario, f"{what}: FERROMQ_REPLICA_ACK_TIMEOUT is not redis.replicaAckTimeout")
        secret = v["redis"]["existingSecret"] or "ferromq-redis"
        ok(("FERROMQ_REDIS_TLS" in env) == v["redis"]["tls"], scenario, f"{what}: redis.tls not honoured")
        ca_file = env.get("FERROMQ_REDIS_CA", {}).get("value")
        ok(bool(ca_file) == bool(v["redis"]["caSecret"]), scenario, f"{what}: FERROMQ_REDIS_CA iff redis.caSecret")
        if ca_file:
            pod = w["spec"]["template"]["spec"]
            mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0].get("volumeMounts") or []}
            volume = next((vol for vol in pod.get("volumes") or []
                           if (vol.get("secret") or {}).get("secretName") == v["redis"]["caSecret"]), None)
            ok(volume and ca_file == f"{mounts.get(volume['name'])}/{volume['secret']['items'][0]['path']}",
               scenario, f"{what}: FERROMQ_REDIS_CA {ca_file} is not the mounted redis.caSecret")
        if replicated:
            ok("REDIS_URL" not in env and "FERROMQ_REDIS_CLUSTER" not in env, scenario,
               f"{what}: REDIS_URL beside FERROMQ_REDIS_SENTINELS (the server refuses both)")
            sentinels = ",".join(f"{h}:26379" for h in hosts) if bundled else v["redis"]["sentinels"]
            ok(env.get("FERROMQ_REDIS_SENTINELS", {}).get("value") == sentinels, scenario,
               f"{what}: FERROMQ_REDIS_SENTINELS is not {sentinels}")
            ok(env.get("FERROMQ_REDIS_MASTER_NAME", {}).get("value") == v["redis"]["masterName"], scenario,
               f"{what}: FERROMQ_REDIS_MASTER_NAME is not redis.masterName")
            existing = v["redis"]["existingSecret"]
            keys = {"FERROMQ_REDIS_PASSWORD": (v["redis"]["existingSecretPasswordKey"] if existing else "redis-password",
                                               bundled or v["redis"]["password"] or existing),
                    "FERROMQ_REDIS_SENTINEL_PASSWORD": (
                        (v["redis"]["existingSecretPasswordKey"] if existing else "redis-password") if bundled else
                        (v["redis"]["existingSecretSentinelPasswordKey"] if existing else "sentinel-password"),
                        bundled or v["redis"]["sentinelPassword"] or existing)}
            for name, (key, present) in keys.items():
                ref = (env.get(name) or {}).get("valueFrom", {}).get("secretKeyRef")
                ok(bool(ref) == bool(present), scenario, f"{what}: {name} set: {bool(ref)}, wanted {bool(present)}")
                if ref and present:
                    ok((ref["name"], ref["key"]) == (secret, key), scenario, f"{what}: {name} from {ref}, not {secret}/{key}")
        else:
            ref = env["REDIS_URL"]["valueFrom"]["secretKeyRef"]
            want = (secret, v["redis"]["existingSecretKey"] if v["redis"]["existingSecret"] else "redis-url")
            ok((ref["name"], ref["key"]) == want, scenario, f"{what}: REDIS_URL from {ref}, not {want}")
            ok(("FERROMQ_REDIS_CLUSTER" in env) == v["redis"]["cluster"], scenario, "redis.cluster not honoured")
            ok("FERROMQ_REDIS_SENTINELS" not in env, scenario, f"{what}: Sentinels with a standalone Redis")

    # The controller: leader election on, its RBAC exactly what the code uses.
    if ok(controller, scenario, "no controller Deployment"):
        pod = controller["spec"]["template"]["spec"]
        env = env_of(pod["containers"][0])
        ok(pod["containers"][0]["args"] == ["controller"], scenario, "controller does not run `ferromq controller`")
        ok(controller["spec"]["replicas"] == v["controller"]["replicas"], scenario, "controller.replicas ignored")
        ok("FERROMQ_NO_LEADER_ELECTION" not in env, scenario, "leader election is off")
        ok(env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
           and env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", scenario,
           "POD_NAMESPACE/POD_NAME not from the downward API")
        watch = env.get("FERROMQ_WATCH_NAMESPACE", {}).get("value")
        sa = pod["serviceAccountName"]
        kind = "Role" if watch else "ClusterRole"
        ok(v["rbac"]["clusterWide"] == (watch is None), scenario,
           "rbac.clusterWide and FERROMQ_WATCH_NAMESPACE disagree")
        if watch:
            ok(not by_kind.get("ClusterRole") and not by_kind.get("ClusterRoleBinding"), scenario,
               "a ClusterRole for a controller that watches one namespace")

        def rules_bound(role_kind, namespace):
            found = set()
            for binding in by_kind.get(role_kind + "Binding", []):
                if binding["metadata"].get("namespace", namespace) != namespace:
                    continue
                if not any(s["name"] == sa for s in binding["subjects"]):
                    continue
                role = named(role_kind, binding["roleRef"]["name"], namespace)
                for rule in (role or {}).get("rules", []):
                    for g in rule["apiGroups"]:
                        for r in rule["resources"]:
                            for verb in rule["verbs"]:
                                for n in rule.get("resourceNames") or [None]:
                                    found.add((g, r, verb, n))
            return found

        scope = rules_bound(kind, watch or NAMESPACE)
        leases = {r for r in rules_bound("Role", NAMESPACE) if r[1] == "leases"}
        lease_name = env["FERROMQ_LEASE_NAME"]["value"]
        granted = {r[:3] for r in scope if r[1] != "leases"}
        ok(granted == CONTROLLER_RULES and all(r[3] is None for r in scope if r[1] != "leases"), scenario,
           f"controller {kind}: granted beyond the code's needs {sorted(granted - CONTROLLER_RULES)}, "
           f"missing {sorted(CONTROLLER_RULES - granted)}")
        want_leases = {(g, r, verb, lease_name if n == "NAME" else n) for g, r, verb, n in LEASE_RULES}
        ok(leases == want_leases, scenario, f"lease Role: extra {sorted(leases - want_leases, key=str)}, "
           f"missing {sorted(want_leases - leases, key=str)}")

    # Optional features: on exactly when their value says so.
    features = {
        "HorizontalPodAutoscaler": v["server"]["autoscaling"]["enabled"],
        "ServiceMonitor": v["metrics"]["serviceMonitor"]["enabled"],
        "NetworkPolicy": v["networkPolicy"]["enabled"],
        "Ingress": v["ingress"]["enabled"],
        "PrometheusRule": v["metrics"]["prometheusRule"]["enabled"],
    }
    for kind, on in features.items():
        ok(bool(by_kind.get(kind)) == on, scenario, f"{kind} rendered: {bool(by_kind.get(kind))}, wanted {on}")
    dashboard = named("ConfigMap", "ferromq-dashboard", v["metrics"]["grafanaDashboard"]["namespace"] or NAMESPACE)
    ok(bool(dashboard) == v["metrics"]["grafanaDashboard"]["enabled"], scenario,
       f"dashboard ConfigMap rendered: {bool(dashboard)}, wanted {v['metrics']['grafanaDashboard']['enabled']}")
    if dashboard:
        check_dashboard(fail, scenario, dashboard, v, chart)
    if by_kind.get("PrometheusRule"):
        check_rules(fail, scenario, by_kind["PrometheusRule"], v,
                    {s["metadata"]["name"] for s in by_kind.get("Service", [])})
    if v["networkPolicy"]["enabled"]:
        policies = {np["metadata"]["name"]: np["spec"] for np in by_kind["NetworkPolicy"]}
        clients = policies.get("ferromq", {}).get("ingress", [])
        ok(len(clients) == 1 and [p["port"] for p in clients[0]["ports"]] == ["http"]
           and clients[0].get("from", []) == v["networkPolicy"]["clientsFrom"], scenario,
           "data plane NetworkPolicy must open only the http port, to networkPolicy.clientsFrom")
        metrics = policies.get("ferromq-controller", {})
        ok("ingress" in metrics and all([p["port"] for p in r["ports"]] == ["health"] and r.get("from")
                                        for r in metrics["ingress"]), scenario,
           "controller NetworkPolicy must open only the health port, to networkPolicy.metricsFrom")
        if v["redis"]["bundled"]:
            rules = policies.get("ferromq-redis", {}).get("ingress", [])
            peers = [p for r in rules for p in r.get("from", [])]
            ok(rules and all(r.get("from") for r in rules), scenario, "Redis NetworkPolicy lets every pod in")
            allowed = [w["metadata"]["name"] for w in workloads.values()
                       if any(matches(p.get("podSelector", {}), w["spec"]["template"]["metadata"]["labels"])
                              and "namespaceSelector" not in p for p in peers)]
            want = ["ferromq", "ferromq-controller"] + (["ferromq-redis"] if replicated else [])
            ok(sorted(allowed) == want, scenario, f"Redis reachable from {allowed}, not {want}")
            ports = {p["port"] for r in rules for p in r.get("ports") or []}
            ok(ports == ({"redis", "sentinel"} if replicated else {"redis"}), scenario, f"Redis opens {ports}")


def promql_problems(expr):
    """What in a PromQL query (or a Grafana label_values() query) names something ferromq does not
    expose: every metric must be one of METRICS, every label matcher a label of its metric (or one
    Prometheus adds when scraping) with a value the code gives it, every grouping a known label,
    every function a PromQL function. Grafana's $variables may stand for label values and ranges."""
    problems, metrics = [], set()
    matcher = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')

    def selector(match):
        name, body = match.group(1) or "", match.group(2)
        names, pairs, pos = ([name] if name else []), [], 0
        while pos < len(body):
            m = matcher.match(body, pos)
            if not m:
                problems.append(f"cannot read the label matchers {{{body}}}")
                break
            pairs.append(m.group(1, 2, 3))
            pos = m.end()
        for label, op, value in pairs:
            if label == "__name__":
                names += value.split("|") if op == "=~" else [value]
        if not names:
            problems.append(f"a selector without a metric name: {{{body}}}")
        for metric in names:
            if metric not in METRICS:
                problems.append(f"unknown metric {metric}")
                continue
            metrics.add(metric)
            for label, op, value in pairs:
                if label == "__name__":
                    continue
                if label not in METRICS[metric] | SCRAPE_LABELS:
                    problems.append(f"{metric} has no label {label}")
                allowed = LABEL_VALUES.get((metric, label))
                if allowed and op in ("=", "!=") and "$" not in value and value not in allowed:
                    problems.append(f"{metric}{{{label}=\"{value}\"}}: {label} is one of {sorted(allowed)}")
        return " __selector__ "

    text = expr
    grafana = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", text, re.S)
    if grafana:
        text, label = grafana.group(1), grafana.group(2)
        if label not in ALL_LABELS:
            problems.append(f"label_values of unknown label {label}")
    text = re.sub(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^{}]*)\}", selector, text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries, $__rate_interval included
    for group in re.finditer(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", text):
        for label in filter(None, (x.strip() for x in group.group(2).split(","))):
            if label not in ALL_LABELS:
                problems.append(f"{group.group(1)} ({label}): no ferromq series has that label")
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    if '"' in text:
        problems.append("a string outside label matchers")
    tokens = re.finditer(r"(?P<num>\d+(\.\d+)?([eE][+-]?\d+)?)|(?P<id>[A-Za-z_:][A-Za-z0-9_:]*)(?P<call>\s*\()?", text)
    for token in tokens:
        name = token.group("id")
        if not name or name == "__selector__":
            continue
        if token.group("call"):
            if name not in PROMQL_FUNCTIONS:
                problems.append(f"unknown function {name}()")
        elif name.lower() not in PROMQL_KEYWORDS:
            if name in METRICS:
                metrics.add(name)
            else:
                problems.append(f"unknown metric {name}")
    if not metrics and not problems:
        problems.append("names no ferromq metric")
    return problems, metrics


def check_dashboard(fail, scenario, cm, values, chart):
    """The dashboard ConfigMap: the file, with the sidecar's labels; valid Grafana JSON whose every
    query names only metrics ferromq exposes, through the data source variable."""
    d = values["metrics"]["grafanaDashboard"]
    ok = fail.check
    meta = cm["metadata"]
    ok(meta["namespace"] == (d["namespace"] or NAMESPACE), scenario, f"dashboard in namespace {meta['namespace']}")
    ok(all(meta["labels"].get(k) == v for k, v in d["labels"].items()), scenario,
       f"dashboard ConfigMap lacks the sidecar's labels {d['labels']}")
    ok(meta["labels"].get("grafana_dashboard") == "1", scenario,
       "dashboard ConfigMap has no grafana_dashboard: \"1\" label (Grafana's sidecar finds it by that)")
    ok((meta.get("annotations") or {}) == d["annotations"], scenario, "metrics.grafanaDashboard.annotations ignored")
    text = (chart / "files" / "grafana-dashboard.json").read_text()
    ok(list(cm["data"]) == ["ferromq.json"] and cm["data"]["ferromq.json"] == text, scenario,
       "the dashboard ConfigMap is not files/grafana-dashboard.json")
    for problem in dashboard_problems(text):
        fail.append(f"{scenario}: files/grafana-dashboard.json: {problem}")


# Metrics the dashboard must show: all of them.
DASHBOARD_METRICS = set(METRICS)


def dashboard_problems(text):
    problems = []
    try:
        board = json.loads(text)
    except json.JSONDecodeError as err:
        return [f"not JSON: {err}"]
    if not (isinstance(board.get("schemaVersion"), int) and 36 <= board["schemaVersion"] <= 41):
        problems.append(f"schemaVersion {board.get('schemaVersion')}, not 36..41")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", str(board.get("uid") or "")):
        problems.append("no fixed uid")
    if board.get("id") is not None:
        problems.append("id must be null (Grafana gives it)")
    variables = {v["name"]: v for v in (board.get("templating") or {}).get("list", [])}
    for name in ("datasource", "project", "queue"):
        if name not in variables:
            problems.append(f"no ${name} variable")
    if variables.get("datasource", {}).get("type") != "datasource" or variables["datasource"].get("query") != "prometheus":
        problems.append("$datasource must be a variable of type datasource over prometheus")

    def walk(node, where):
        if isinstance(node, dict):
            if "datasource" in node:
                ds = node["datasource"]
                if not (isinstance(ds, dict) and ds.get("uid") == "${datasource}" and ds.get("type") == "prometheus"):
                    problems.append(f"{where}: datasource {ds!r}, not the ${{datasource}} variable")
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for n, value in enumerate(node):
                walk(value, f"{where}/{value.get('name', n) if isinstance(value, dict) else n}")

    walk(board, "")
    used, ids, queries = set(), set(), []
    for name, var in variables.items():
        if var.get("type") == "query":
            queries.append((f"variable {name}", var.get("query") if isinstance(var.get("query"), str)
                            else (var.get("query") or {}).get("query", "")))
    panels = [p for top in board.get("panels", []) for p in [top] + top.get("panels", [])]
    if not panels:
        problems.append("no panels")
    for panel in panels:
        what = f"panel {panel.get('id')} {panel.get('title')!r}"
        if panel.get("id") in ids:
            problems.append(f"{what}: id used twice")
        ids.add(panel.get("id"))
        grid = panel.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in "hwxy") or grid["x"] + grid["w"] > 24:
            problems.append(f"{what}: gridPos {grid}")
        if panel.get("type") == "row":
            continue
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{what}: no queries")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            problems.append(f"{what}: refIds {refs}")
        queries += [(what, t.get("expr", "")) for t in targets]
    for what, expr in queries:
        found, metrics = promql_problems(expr)
        problems += [f"{what}: {p} in {expr!r}" for p in found]
        used |= metrics
        for var in re.findall(r"\$(\w+)", expr):
            if var not in variables and not var.startswith("__"):
                problems.append(f"{what}: ${var} is not a variable")
    missing = DASHBOARD_METRICS - used
    if missing:
        problems.append(f"no panel shows {sorted(missing)}")
    return problems


# The alerts, by their values key: name, and whether they are about one queue (so their
# annotations name its project and queue).
ALERTS = {
    "backlogGrowing": ("FerromqQueueBacklogGrowing", True),
    "oldestMessage": ("FerromqQueueOldestMessageOld", True),
    "pushFailures": ("FerromqPushFailures", False),
    "storeErrors": ("FerromqStoreErrors", False),
    "serverErrors": ("FerromqServerErrors", False),
    "reconcileErrors": ("FerromqReconcileErrors", False),
}


def check_rules(fail, scenario, rule_objects, values, services):
    """The PrometheusRule: the alerts the values turn on, with their thresholds, severities and
    labels; every query names only metrics ferromq exposes, from the rendered Services (job) of
    the release namespace; summaries and descriptions, naming project and queue where they can."""
    ok = fail.check
    r = values["metrics"]["prometheusRule"]
    if not ok(len(rule_objects) == 1, scenario, f"{len(rule_objects)} PrometheusRules rendered"):
        return
    rule = rule_objects[0]
    labels = rule["metadata"]["labels"]
    ok(all(labels.get(k) == v for k, v in r["labels"].items()), scenario, "metrics.prometheusRule.labels ignored")
    alerts = {a.get("alert"): a for g in rule["spec"]["groups"] for a in g.get("rules") or []}
    want = {name for key, (name, _) in ALERTS.items() if r[key]["enabled"]}
    ok(set(alerts) == want, scenario, f"alerts {sorted(alerts, key=str)}, wanted {sorted(want)}")
    fmt = str  # Helm prints the values' numbers as Python does: 1000, 0.05
    for key, (name, per_queue) in ALERTS.items():
        alert, v = alerts.get(name), r[key]
        if not alert:
            continue
        expr = alert["expr"]
        ok(alert.get("for") == v["for"], scenario, f"{name}: for {alert.get('for')}, not {v['for']}")
        ok(alert["labels"] == {"severity": v["severity"], **r["additionalAlertLabels"]}, scenario,
           f"{name}: labels {alert['labels']}")
        notes = alert.get("annotations") or {}
        ok(notes.get("summary") and notes.get("description"), scenario, f"{name}: no summary and description")
        if per_queue:
            ok(all("$labels.project" in notes.get(k, "") and "$labels.queue" in notes.get(k, "")
                   for k in ("summary", "description")), scenario, f"{name}: annotations do not name project and queue")
        else:
            ok("$labels.namespace" in notes.get("description", ""), scenario, f"{name}: description names no namespace")
        found, _ = promql_problems(expr)
        for problem in found:
            fail.append(f"{scenario}: {name}: {problem}")
        jobs = set(re.findall(r'\bjob="([^"]*)"', expr))
        ok(jobs and jobs <= services, scenario, f"{name}: reads jobs {sorted(jobs)}, not rendered Services {sorted(services)}")
        ok(set(re.findall(r'\bnamespace="([^"]*)"', expr)) == {NAMESPACE}, scenario, f"{name}: not the release namespace")
        thresholds = {"backlogGrowing": [f"> {fmt(v.get('depth'))}", f"[{v.get('window')}:"],
                      "oldestMessage": [f"> {fmt(v.get('ageSeconds'))}"],
                      "pushFailures": [f"> {fmt(v.get('ratio'))}", 'outcome="failed"'],
                      "storeErrors": [f"> {fmt(v.get('rate'))}"],
                      "serverErrors": [f"> {fmt(v.get('ratio'))}", 'status="5xx"'],
                      "reconcileErrors": ['result="error"']}[key]
        for part in thresholds:
            ok(part in expr, scenario, f"{name}: {part!r} not in {expr!r}")


def keda_problems(docs):
    """The KEDA example fits together: each ScaledObject scales a Deployment of the example on the
    queue it consumes, with a metrics-api trigger that reads queue.size from ferromq's answer and
    authenticates with the consumer's Secret, or a prometheus trigger on ferromq's metrics."""
    problems = []
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc.get("kind"), {})[(doc.get("metadata") or {}).get("name")] = doc
    # Both ScaledObjects of the example have one name (applying one replaces the other): a list.
    scaled = [doc for doc in docs if doc.get("kind") == "ScaledObject"]
    if not scaled:
        problems.append("no ScaledObject")
    types = set()
    for doc in scaled:
        spec = doc.get("spec") or {}
        what = f"ScaledObject {doc['metadata'].get('name')}"
        ref = spec.get("scaleTargetRef") or {}
        target = by_kind.get(ref.get("kind", "Deployment"), {}).get(ref.get("name"))
        if ref.get("kind", "Deployment") != "Deployment" or not target:
            problems.append(f"{what}: scales {ref}, not a Deployment of the example")
            continue
        container = target["spec"]["template"]["spec"]["containers"][0]
        env = env_of(container)
        for trigger in spec.get("triggers") or []:
            meta, kind = trigger.get("metadata") or {}, trigger.get("type")
            types.add(kind)
            if kind == "metrics-api":
                missing = {"url", "valueLocation", "targetValue"} - set(meta)
                if missing:
                    problems.append(f"{what}: metrics-api without {sorted(missing)}")
                    continue
                if not QUEUE_URL.match(meta["url"]):
                    problems.append(f"{what}: url {meta['url']} is not a queue of ferromq's REST API")
                if meta["url"] != env.get("QUEUE_URL", {}).get("value"):
                    problems.append(f"{what}: url {meta['url']} is not the queue the consumer reads (QUEUE_URL)")
                value = QUEUE_REPLY
                for step in meta["valueLocation"].split("."):
                    value = value.get(step) if isinstance(value, dict) else None
                if meta["valueLocation"] != "queue.size" or not isinstance(value, int):
                    problems.append(f"{what}: valueLocation {meta['valueLocation']} is not the queue's size")
                if meta.get("format", "json") != "json":
                    problems.append(f"{what}: ferromq answers JSON, not {meta['format']}")
                if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", str(meta["targetValue"])):
                    problems.append(f"{what}: targetValue {meta['targetValue']!r} is not a number")
                if meta.get("authMode") != "bearer":
                    problems.append(f"{what}: authMode {meta.get('authMode')!r}, not bearer (ferromq needs a token)")
                auth = by_kind.get("TriggerAuthentication", {}).get((trigger.get("authenticationRef") or {}).get("name"))
                if not auth:
                    problems.append(f"{what}: authenticationRef names no TriggerAuthentication of the example")
                    continue
                refs = {s["parameter"]: s for s in auth["spec"].get("secretTargetRef") or []}
                token = (env.get("TOKEN", {}).get("valueFrom") or {}).get("secretKeyRef") or {}
                if set(refs) != {"token"}:
                    problems.append(f"{what}: the bearer token must be the parameter token, not {sorted(refs)}")
                elif (refs["token"]["name"], refs["token"]["key"]) != (token.get("name"), token.get("key")):
                    problems.append(f"{what}: the token is not the consumer's Secret {token}")
            elif kind == "prometheus":
                missing = {"serverAddress", "query", "threshold"} - set(meta)
                if missing:
                    problems.append(f"{what}: prometheus without {sorted(missing)}")
                    continue
                found, _ = promql_problems(meta["query"])
                problems += [f"{what}: query {meta['query']!r}: {p}" for p in found]
                url = QUEUE_URL.match(env.get("QUEUE_URL", {}).get("value", ""))
                pq = dict(re.findall(r'\b(project|queue)="([^"]*)"', meta["query"]))
                if not url or pq != {"project": url.group(1), "queue": url.group(2)}:
                    problems.append(f"{what}: query reads {pq}, not the queue the consumer reads")
            else:
                problems.append(f"{what}: trigger type {kind!r}, not metrics-api or prometheus")
    if not {"metrics-api", "prometheus"} <= types:
        problems.append(f"triggers {sorted(types, key=str)}: the example shows metrics-api and prometheus")
    return problems


def check_keda_examples(fail, folder):
    docs, before = [], len(fail)
    for path in sorted(pathlib.Path(folder).glob("*.yaml")):
        for n, doc in enumerate((d for d in yaml.safe_load_all(path.read_text()) if d), 1):
            docs.append(doc)
            schema_check(fail, f"{path} document {n}", doc)
            if doc.get("kind") == "Deployment":
                pod = doc["spec"]["template"]["spec"]
                c = pod["containers"][0]
                csc, psc = c.get("securityContext") or {}, pod.get("securityContext") or {}
                fail.check(psc.get("runAsNonRoot") and csc.get("readOnlyRootFilesystem")
                           and csc.get("allowPrivilegeEscalation") is False and c.get("resources"),
                           str(path), "the consumer must run as non-root, read-only, with resources")
    for problem in keda_problems(docs):
        fail.append(f"{folder}: {problem}")
    kinds = sorted({d.get("kind") for d in docs})
    print(f"{folder}: {len(docs)} objects ({', '.join(kinds)}): {'ok' if len(fail) == before else 'FAILED'}")
    return docs


def refused_values(fail, helm, chart):
    for args, message in REFUSED:
        run = subprocess.run([helm, "template", RELEASE, chart, "--namespace", NAMESPACE, *args],
                             capture_output=True, text=True)
        fail.check(run.returncode != 0 and message in run.stderr, "refused values",
                   f"helm template {' '.join(args)} should fail with {message!r}, got: {run.stderr.strip()[:300]}")


def values_documented(fail, chart):
    """Every value of values.yaml (not the groups holding them) has a comment right above it."""
    schema = json.loads((chart / "values.schema.json").read_text())
    lines = (chart / "values.yaml").read_text().splitlines()
    stack, count = [], 0  # (indent, schema node or None inside a value)
    for n, line in enumerate(lines):
        m = re.match(r"^( *)([A-Za-z][\w.-]*):", line)
        if not m:
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else schema
        if parent is None:
            continue
        node = (parent.get("properties") or {}).get(m.group(2))
        fail.check(node is not None, "values.yaml", f"line {n + 1}: {m.group(2)} is not in values.schema.json")
        if node and "properties" in node:
            stack.append((indent, node))
            continue
        stack.append((indent, None))
        previous = next((p for p in reversed(lines[:n]) if p.strip()), "")
        count += 1
        fail.check(previous.strip().startswith("#"), "values.yaml", f"line {n + 1}: {m.group(2)} has no comment")
    fail.check(count > 50, "values.yaml", f"only {count} values found")
    return count


def validator_self_test(fail):
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}, "template": {
               "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolcy": "Always"}]}}}}
    errors = []
    schema_check(errors, "self-test", bad)
    fail.check(errors and "imagePullPolcy" in errors[0], "self-test",
               "kubernetes-validate accepted a Deployment with a misspelt field")

    # The CRD schemas: a good ScaledObject passes, broken copies do not.
    scaled = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "consumer"},
              "spec": {"scaleTargetRef": {"name": "consumer"}, "triggers": [{"type": "metrics-api", "metadata": {
                  "url": "http://ferromq:8080/3/projects/p/queues/q", "valueLocation": "queue.size",
                  "targetValue": "10", "authMode": "bearer"}, "authenticationRef": {"name": "consumer"}}]}}
    errors = []
    schema_check(errors, "self-test", scaled)
    fail.check(not errors, "self-test", f"the CRD schema refused a good ScaledObject: {errors}")

    def edit(change):
        doc = copy.deepcopy(scaled)
        change(doc)
        return doc

    broken = {
        "a misspelt spec field": edit(lambda d: d["spec"].update(maxReplicas=3)),
        "no triggers": edit(lambda d: d["spec"].pop("triggers")),
        "an empty trigger type": edit(lambda d: d["spec"]["triggers"][0].update(type="")),
        "a number as trigger metadata": edit(lambda d: d["spec"]["triggers"][0]["metadata"].update(targetValue=10)),
        "an unknown field in the authenticationRef": edit(
            lambda d: d["spec"]["triggers"][0]["authenticationRef"].update(namespace="x")),
        "an unknown metadata field": edit(lambda d: d["metadata"].update(nmae="x")),
    }
    for what, doc in broken.items():
        errors = []
        schema_check(errors, "self-test", doc)
        fail.check(errors, "self-test", f"the ScaledObject CRD schema accepted {what}")
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "r"},
            "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "for": "5 minutes", "expr": "1"}]}]}}
    errors = []
    schema_check(errors, "self-test", rule)
    fail.check(errors and "5 minutes" in " ".join(errors), "self-test", "the PrometheusRule CRD schema accepted a bad for")

    # The KEDA example's own rules: a misspelt trigger type, and a valueLocation ferromq does not answer.
    consumer = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "consumer"}, "spec": {"template": {
        "spec": {"containers": [{"name": "c", "env": [
            {"name": "QUEUE_URL", "value": "http://ferromq:8080/3/projects/p/queues/q"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}}]}]}}}}
    auth = {"kind": "TriggerAuthentication", "metadata": {"name": "consumer"},
            "spec": {"secretTargetRef": [{"parameter": "token", "name": "s", "key": "token"}]}}
    prom = {"kind": "ScaledObject", "metadata": {"name": "p"}, "spec": {"scaleTargetRef": {"name": "consumer"}, "triggers": [
        {"type": "prometheus", "metadata": {"serverAddress": "http://prometheus:9090", "threshold": "10",
                                            "query": 'max(ferromq_declared_queue_depth{project="p", queue="q"})'}}]}}
    good = [consumer, auth, scaled, prom]
    fail.check(not keda_problems(good), "self-test", f"the KEDA checks refused a good example: {keda_problems(good)}")
    for what, change in {
        "a misspelt trigger type": lambda d: d["spec"]["triggers"][0].update(type="metric-api"),
        "valueLocation queue.sise": lambda d: d["spec"]["triggers"][0]["metadata"].update(valueLocation="queue.sise"),
        "authMode apiKey": lambda d: d["spec"]["triggers"][0]["metadata"].update(authMode="apiKey"),
    }.items():
        fail.check(keda_problems([consumer, auth, edit(change), prom]), "self-test", f"the KEDA checks accepted {what}")

    # Queries: a misspelt metric, a label it does not have, a value the code never gives.
    for expr in ('max(ferromq_queue_depht{project="p"})', 'sum(rate(ferromq_messages_total{queue="q"}[5m]))',
                 'sum(rate(ferromq_http_requests_total{status="500"}[5m]))', "sum(rat(ferromq_messages_total[5m]))",
                 "sum by (projet) (ferromq_queue_depth)", "max(queue_depth)"):
        fail.check(promql_problems(expr)[0], "self-test", f"the query check accepted {expr!r}")
    board = json.dumps({"schemaVersion": 39, "uid": "x", "id": None, "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus"},
        {"name": "project", "type": "custom"}, {"name": "queue", "type": "custom"}]},
        "panels": [{"id": 1, "type": "timeseries", "gridPos": {"h": 8, "w": 24, "x": 0, "y": 0},
                    "datasource": {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"},
                    "targets": [{"refId": "A", "expr": "max(ferromq_queue_depth)"}]}]})
    found = dashboard_problems(board)
    fail.check(any("P1809F7CD0C75ACF3" in p for p in found), "self-test",
               "the dashboard check accepted a hard-coded datasource uid")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--helm", required=True)
    parser.add_argument("--chart", required=True)
    parser.add_argument("--keda-examples", type=pathlib.Path,
                        help="folder of the KEDA example (ScaledObject, TriggerAuthentication, consumer)")
    parser.add_argument("rendered", type=pathlib.Path)
    args = parser.parse_args()
    chart = pathlib.Path(args.chart)
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    app_version = yaml.safe_load((chart / "Chart.yaml").read_text())["appVersion"]
    fail = Failures()
    validator_self_test(fail)
    refused_values(fail, args.helm, args.chart)
    documented = values_documented(fail, chart)

    files = sorted(args.rendered.glob("*.yaml"))
    scenarios = {f.stem for f in files}
    expected = {"default"} | {p.name[: -len("-values.yaml")] for p in (chart / "ci").glob("*-values.yaml")}
    fail.check(scenarios == expected, "rendered", f"renders {sorted(scenarios)}, expected {sorted(expected)}")
    for path in files:
        scenario = path.stem
        override = {} if scenario == "default" else yaml.safe_load((chart / "ci" / f"{scenario}-values.yaml").read_text())
        values = deep_merge(defaults, override)
        external = {}
        if values["redis"]["existingSecret"]:
            external[values["redis"]["existingSecret"]] = {values["redis"]["existingSecretKey"],
                                                           values["redis"]["existingSecretPasswordKey"],
                                                           values["redis"]["existingSecretSentinelPasswordKey"]}
        if values["auth"]["existingSecret"]:
            external[values["auth"]["existingSecret"]] = {values["auth"]["existingSecretKey"]}
        if values["server"]["tls"]["secretName"]:
            external[values["server"]["tls"]["secretName"]] = {"tls.crt", "tls.key"}
        if values["redis"]["caSecret"]:
            external[values["redis"]["caSecret"]] = {values["redis"]["caSecretKey"]}
        if values["server"]["pushCaSecret"]:
            external[values["server"]["pushCaSecret"]] = {values["server"]["pushCaSecretKey"]}
        if values["server"]["pushJwtSecret"]:
            external[values["server"]["pushJwtSecret"]] = {values["server"]["pushJwtSecretKey"]}
        objects = [o for o in yaml.safe_load_all(path.read_text()) if o]
        before = len(fail)
        for obj in objects:
            schema_check(fail, scenario, obj)
        check_scenario(fail, scenario, objects, values, external, chart, app_version)
        if scenario == "default":
            got = {(o["kind"], o["metadata"]["name"]) for o in objects}
            fail.check(got == DEFAULT_OBJECTS, scenario,
                       f"default objects differ: extra {sorted(got - DEFAULT_OBJECTS)}, missing {sorted(DEFAULT_OBJECTS - got)}")
            listing = ", ".join(f"{k}/{n}" for k, n in sorted(got))
            print(textwrap.fill(f"default values render {len(got)} objects: {listing}", 100,
                                subsequent_indent="  ", break_on_hyphens=False))
        status = "ok" if len(fail) == before else "FAILED"
        kinds = len({o["kind"] for o in objects})
        print(f"{scenario:24} {len(objects):3} objects, {kinds:2} kinds: {status}")

    if args.keda_examples:
        check_keda_examples(fail, args.keda_examples)
    print(f"schemas: Kubernetes {', '.join(KUBE_VERSIONS)} (strict), CRDs {', '.join(k for _, k in sorted(CRD_SCHEMAS))} "
          f"(strict); refused values: {len(REFUSED)} cases; {documented} values in values.yaml, each with a comment")
    if fail:
        print(f"\n{len(fail)} chart check(s) failed:", file=sys.stderr)
        for message in fail:
            print(f"  {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
