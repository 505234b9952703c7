#!/usr/bin/python3
"""Offline checks of the Kubernetes manifests and container images.

There is no cluster and no Docker engine where the tests run, so this checks
what can be checked without them:

1. Render: every overlay (deploy/k8s/overlays/*, deploy/k8s/ci/*) is rendered
   with `kubectl kustomize` and must equal its checked-in copy in
   deploy/k8s/rendered/ (`--update` rewrites them). kubectl is --kubectl,
   $MOE_KUBECTL (scripts/install-kubectl.sh) or the one on PATH. Without one
   (or with one older than kustomize v5) this step fails under
   MOE_TEST_STRICT=1 (scripts/test.sh) and is otherwise skipped with a
   message, the checked-in renders still being checked below.
2. Schema: every rendered object is validated against strict JSON Schemas
   (deploy/k8s/schemas: Kubernetes 1.36 OpenAPI via @kubernetes/client-node,
   and a hand-written ServiceMonitor); unknown fields and unknown kinds fail.
3. Consistency with the binaries: for every container of every workload the
   command the pod would run is worked out (moe-entrypoint is run in its
   dry-run mode with the placement ConfigMap and the pod's environment, for
   every StatefulSet ordinal); its program must be one the project builds
   (present in --bin-dir) and that the images ship (MOE_BINARIES of both
   Dockerfiles), and the program itself must accept every flag and value
   (it is run with those flags plus --helpfull: absl rejects unknown flags
   and bad values before printing usage). Exec probes' commands get the
   same check.
4. Wiring: references between objects resolve (ConfigMaps, Secrets, PVCs,
   Service selectors and named ports, NetworkPolicy ports, HPA and PDB
   targets, ServiceMonitor), probes and --listen agree with the container
   ports, StatefulSet replicas agree with the placement ConfigMap, each
   volume has exactly one source, pods run as non-root. Files named by
   flags (--tls-*, --api-keys-file) lie under a volumeMount of the
   container and are keys of the mounted Secret or ConfigMap. Probes are
   gRPC probes, or exec probes running moe-health-probe; a server with
   --tls-cert needs the latter (the kubelet's gRPC probe cannot speak TLS),
   with TLS flags, and with a client certificate where the server requires
   one (--tls-ca on routers and workers, --tls-client-ca on the gateway).
5. Images: both Dockerfiles run as a numeric non-root USER, copy the
   entrypoint, ship every program the entrypoint can start, and their
   HEALTHCHECK command passes check 3; runtime-packages.sh resolves every
   shared library of the local build to a Debian package.

Usage: check.py --bin-dir BUILD/bin [--update] [--kubectl PATH]
Exit status 0 when everything holds; the failures are printed otherwise.
"""
import argparse
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DOCKER = os.path.join(ROOT, "deploy", "docker")
ENTRYPOINT = os.path.join(DOCKER, "entrypoint.sh")
RENDERED = os.path.join(HERE, "rendered")
SCHEMA_FILES = [os.path.join(HERE, "schemas", f) for f in ("kubernetes-strict.json", "servicemonitor-strict.json")]
DOCKERFILES = [os.path.join(DOCKER, f) for f in ("Dockerfile.cpu", "Dockerfile.cuda")]
PLACEMENT_MOUNT = "/etc/moe/placement"
# Flags whose value is a file the process reads at start-up.
FILE_FLAGS = ("tls-cert", "tls-key", "tls-ca", "tls-client-ca", "api-keys-file")
HEALTH_PROBE = "moe-health-probe"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


class Report:
    def __init__(self):
        self.failures = []
        self.notes = []

    def fail(self, where, msg):
        self.failures.append(f"{where}: {msg}")

    def note(self, msg):
        self.notes.append(msg)


def overlay_dirs():
    dirs = sorted(glob.glob(os.path.join(HERE, "overlays", "*", "kustomization.yaml")))
    dirs += sorted(glob.glob(os.path.join(HERE, "ci", "*", "kustomization.yaml")))
    return [os.path.dirname(d) for d in dirs]


def find_kubectl(explicit):
    path = explicit or os.environ.get("MOE_KUBECTL") or shutil.which("kubectl")
    if not path:
        return None, "kubectl not found"
    try:
        out = subprocess.run([path, "version", "--client", "-o", "json"], capture_output=True, text=True,
                             timeout=30).stdout
        kv = json.loads(out).get("kustomizeVersion", "")
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        return None, f"{path}: cannot read its version ({e})"
    m = re.match(r"v(\d+)", kv)
    if not m or int(m.group(1)) < 5:
        return None, f"{path} has kustomize '{kv}', need v5 or later"
    return path, f"{path} (kustomize {kv})"


def render(report, kubectl, update):
    """Step 1. Returns {overlay name: list of objects}."""
    if kubectl is None:
        report.note("render: SKIPPED the comparison with kubectl kustomize (" + kubectl_why +
                    "); validating the checked-in renders in deploy/k8s/rendered/")
    out = {}
    for d in overlay_dirs():
        name = os.path.basename(d)
        path = os.path.join(RENDERED, name + ".yaml")
        if kubectl:
            r = subprocess.run([kubectl, "kustomize", d], capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                report.fail(os.path.relpath(d, ROOT), "kubectl kustomize failed: " + r.stderr.strip())
                continue
            text = r.stdout
            old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
            if update:
                if old != text:
                    os.makedirs(RENDERED, exist_ok=True)
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(text)
                    report.note(f"render: wrote {os.path.relpath(path, ROOT)}")
            elif old != text:
                report.fail(os.path.relpath(path, ROOT), "differs from `kubectl kustomize "
                            f"{os.path.relpath(d, ROOT)}`: run deploy/k8s/render.sh and commit the result")
        if not os.path.exists(path):
            report.fail(os.path.relpath(path, ROOT), "missing: run deploy/k8s/render.sh")
            continue
        with open(path, encoding="utf-8") as f:
            out[name] = [o for o in yaml.safe_load_all(f) if o is not None]
    stale = {os.path.basename(p)[:-5] for p in glob.glob(os.path.join(RENDERED, "*.yaml"))} - {
        os.path.basename(d) for d in overlay_dirs()}
    for s in sorted(stale):
        report.fail(f"deploy/k8s/rendered/{s}.yaml", "has no overlay: delete it")
    return out


def load_schemas():
    kinds = {}
    for path in SCHEMA_FILES:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        for key, schema in doc["kinds"].items():
            root = {"$schema": doc["$schema"], "definitions": doc["definitions"]}
            root.update(schema)
            kinds[key] = jsonschema.Draft7Validator(root)
    return kinds


def validate_schemas(report, objects_by_overlay):
    """Step 2."""
    validators = load_schemas()
    count = 0
    for overlay, objects in objects_by_overlay.items():
        for o in objects:
            key = f"{o.get('apiVersion')}/{o.get('kind')}"
            where = f"{overlay}: {o.get('kind')}/{o.get('metadata', {}).get('name')}"
            v = validators.get(key)
            if v is None:
                report.fail(where, f"no schema for {key} (add it to deploy/k8s/schemas/generate.py KINDS)")
                continue
            for e in sorted(v.iter_errors(o), key=lambda e: list(e.absolute_path)):
                path = "/".join(str(p) for p in e.absolute_path) or "(object)"
                report.fail(where, f"schema: {path}: {e.message}")
            count += 1
    report.note(f"schema: {count} objects in {len(objects_by_overlay)} renders validated (strict)")


# --- step 3 and 4 -------------------------------------------------------------

def dockerfile_binaries(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r'ARG MOE_BINARIES="([^"]+)"', text)
    return set(m.group(1).split()) if m else set()


def flag_check(report, where, bin_dir, argv):
    """Runs the program with argv's flags and --helpfull; absl stops on an
    unknown flag or a bad value before it prints the usage."""
    prog = os.path.basename(argv[0])
    path = os.path.join(bin_dir, prog)
    if not os.path.exists(path):
        report.fail(where, f"runs '{prog}', which the project does not build (not in {bin_dir})")
        return
    r = subprocess.run([path] + argv[1:] + ["--helpfull"], capture_output=True, text=True, timeout=60)
    errors = [l for l in (r.stdout + r.stderr).splitlines() if l.startswith("ERROR:")]
    for e in errors:
        report.fail(where, f"{prog} rejects its arguments: {e[len('ERROR:'):].strip()}")
    if not errors and "--helpfull" not in r.stdout + r.stderr and "Flags from" not in r.stdout + r.stderr:
        report.fail(where, f"{prog} {' '.join(argv[1:])} --helpfull printed no usage (exit {r.returncode})")


def expand(value, env):
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)


class Cluster:
    """One render, indexed."""

    def __init__(self, name, objects):
        self.name = name
        self.objects = objects
        self.by_kind = {}
        for o in objects:
            self.by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o

    def get(self, kind, name):
        return self.by_kind.get(kind, {}).get(name)

    def all(self, kind):
        return list(self.by_kind.get(kind, {}).values())


def pod_env(report, where, cluster, container, pod_name, namespace):
    env = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = expand(e["value"], env)
            continue
        src = e.get("valueFrom", {})
        if "fieldRef" in src:
            field = src["fieldRef"]["fieldPath"]
            env[e["name"]] = {"metadata.name": pod_name, "metadata.namespace": namespace}.get(field, "x")
        elif "configMapKeyRef" in src:
            ref = src["configMapKeyRef"]
            cm = cluster.get("ConfigMap", ref["name"])
            if cm is None or ref["key"] not in cm.get("data", {}):
                report.fail(where, f"env {e['name']}: ConfigMap {ref['name']} key {ref['key']} does not exist")
            else:
                env[e["name"]] = cm["data"][ref["key"]]
        elif "secretKeyRef" in src:
            ref = src["secretKeyRef"]
            if cluster.get("Secret", ref["name"]) is None:
                report.fail(where, f"env {e['name']}: Secret {ref['name']} does not exist")
            env[e["name"]] = "secret"
    return env


def container_argv(report, where, cluster, pod_spec, container, env, bin_dir):
    command = [expand(c, env) for c in container.get("command", [])]
    args = [expand(a, env) for a in container.get("args", [])]
    if not command:
        report.fail(where, "no command: say which program runs (the image's ENTRYPOINT is only a default)")
        return None
    for a in command + args:
        if "$(" in a:
            report.fail(where, f"'{a}' refers to an environment variable the container does not set")
    if command[0] != "moe-entrypoint":
        return command + args
    # The entrypoint reads the placement ConfigMap mounted at PLACEMENT_MOUNT.
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    mount = next((m for m in container.get("volumeMounts", []) if m["mountPath"] == PLACEMENT_MOUNT), None)
    with tempfile.TemporaryDirectory() as placement:
        if mount is not None:
            cm_name = volumes.get(mount["name"], {}).get("configMap", {}).get("name")
            cm = cluster.get("ConfigMap", cm_name) if cm_name else None
            if cm is None:
                report.fail(where, f"{PLACEMENT_MOUNT} is not a ConfigMap of the render")
            else:
                for k, v in cm.get("data", {}).items():
                    with open(os.path.join(placement, k), "w", encoding="utf-8") as f:
                        f.write(v)
        run_env = {k: v for k, v in os.environ.items() if not k.startswith("MOE_")}
        run_env.update(env)
        run_env.update({"MOE_ENTRYPOINT_DRY_RUN": "1", "MOE_BIN_DIR": bin_dir, "MOE_PLACEMENT_DIR": placement})
        r = subprocess.run(["sh", ENTRYPOINT] + command[1:] + args, capture_output=True, text=True, env=run_env,
                           timeout=30)
    if r.returncode != 0:
        report.fail(where, "moe-entrypoint refuses: " + r.stderr.strip())
        return None
    return r.stdout.splitlines()


def listen_port(argv):
    for a in argv:
        m = re.fullmatch(r"--listen=.*:(\d+)", a)
        if m:
            return int(m.group(1))
    return None


def flag_values(argv):
    """{flag name with '-': value} of the --name=value and bare --name arguments
    (bare ones: "true"); the last one wins, as with absl."""
    flags = {}
    for a in argv[1:]:
        m = re.fullmatch(r"--?([A-Za-z0-9_-]+)(?:=(.*))?", a, re.S)
        if m:
            flags[m.group(1).replace("_", "-")] = "true" if m.group(2) is None else m.group(2)
    return flags


def check_files(report, where, cluster, pod_spec, container, argv):
    """Every FILE_FLAGS value must lie under one of the container's
    volumeMounts and, for a Secret or ConfigMap volume, be one of its keys."""
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    for name, path in flag_values(argv).items():
        if name not in FILE_FLAGS or not path:
            continue
        mounts = [m for m in container.get("volumeMounts", [])
                  if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")]
        if not mounts:
            report.fail(where, f"--{name}={path} is not under any volumeMount of the container")
            continue
        m = max(mounts, key=lambda m: len(m["mountPath"]))
        v = volumes.get(m["name"], {})
        if m.get("subPath"):
            key = m["subPath"] if path == m["mountPath"] else None
        else:
            key = path[len(m["mountPath"].rstrip("/")) + 1:]
        for kind, src, ref in (("Secret", v.get("secret"), "secretName"), ("ConfigMap", v.get("configMap"), "name")):
            if src is None:
                continue
            obj = cluster.get(kind, src.get(ref))
            if obj is None:
                continue  # check_pod reports the volume
            keys = {i["path"]: i["key"] for i in src["items"]} if src.get("items") else {
                k: k for k in list(obj.get("data", {})) + list(obj.get("stringData", {})) + list(obj.get("binaryData", {}))}
            if key not in keys:
                report.fail(where, f"--{name}={path}: {kind} {src.get(ref)} (volume {m['name']}) has no key "
                            f"'{key}' (it has {', '.join(sorted(keys)) or 'none'})")


def check_exec_probe(report, where, cluster, pod_spec, container, server_argv, port, command, bin_dir, shipped):
    """An exec probe: its program is built and shipped and accepts its flags;
    moe-health-probe must ask the server's port on loopback, speak TLS when
    the server does and present a client certificate when it requires one."""
    if not command:
        report.fail(where, "exec probe without a command")
        return
    for a in command:
        if "$(" in a:
            report.fail(where, f"'{a}': the kubelet does not expand $(VAR) in exec probes")
    prog = os.path.basename(command[0])
    for df, progs in shipped.items():
        if prog not in progs:
            report.fail(where, f"runs {prog}, which {os.path.relpath(df, ROOT)} does not ship (MOE_BINARIES)")
    flag_check(report, where, bin_dir, command)
    check_files(report, where, cluster, pod_spec, container, command)
    if prog != HEALTH_PROBE:
        return
    probe = flag_values(command)
    server = flag_values(server_argv)
    m = re.fullmatch(r"(.*):(\d+)", probe.get("address", "127.0.0.1:50051"))
    if m is None:
        report.fail(where, f"{HEALTH_PROBE} --address={probe.get('address')} is not HOST:PORT")
    else:
        if port is not None and int(m.group(2)) != port:
            report.fail(where, f"asks port {m.group(2)}, the process listens on {port}")
        if m.group(1) not in ("127.0.0.1", "localhost", "[::1]"):
            report.fail(where, f"asks {m.group(1)}: an exec probe runs in the pod, ask 127.0.0.1")
    probe_tls = probe.get("tls", "false") in ("true", "1", "yes") or bool(probe.get("tls-ca") or probe.get("tls-cert"))
    server_tls = bool(server.get("tls-cert"))
    server_prog = os.path.basename(server_argv[0])
    client_ca = server.get("tls-client-ca") if server_prog == "moe-gateway" else server.get("tls-ca")
    if server_tls and not probe_tls:
        report.fail(where, f"speaks plaintext to {server_prog}, which serves TLS (--tls-cert): give it --tls-ca")
    elif probe_tls and not server_tls:
        report.fail(where, f"speaks TLS to {server_prog}, which serves plaintext (no --tls-cert)")
    if server_tls and client_ca and not (probe.get("tls-cert") and probe.get("tls-key")):
        report.fail(where, f"{server_prog} requires a client certificate (mutual TLS: "
                    f"--{'tls-client-ca' if server_prog == 'moe-gateway' else 'tls-ca'}): "
                    "give the probe --tls-cert and --tls-key")


def check_pod(report, cluster, owner, pod_spec, pod_names, namespace, bin_dir, shipped):
    where0 = f"{cluster.name}: {owner['kind']}/{owner['metadata']['name']}"
    sec = pod_spec.get("securityContext", {})
    if not sec.get("runAsNonRoot") or sec.get("runAsUser", 0) == 0:
        report.fail(where0, "pods must set runAsNonRoot: true and a non-zero runAsUser")
    volumes = {}
    sources = ("persistentVolumeClaim", "emptyDir", "hostPath", "configMap", "secret", "projected",
               "downwardAPI", "ephemeral", "csi", "nfs")
    for v in pod_spec.get("volumes", []):
        got = [k for k in v if k != "name"]
        if len(got) != 1:
            report.fail(where0, f"volume {v['name']} has {len(got)} sources ({', '.join(got)}), want exactly one")
        volumes[v["name"]] = v
        if "configMap" in v and cluster.get("ConfigMap", v["configMap"]["name"]) is None:
            report.fail(where0, f"volume {v['name']}: ConfigMap {v['configMap']['name']} is not in the render")
        if "secret" in v and cluster.get("Secret", v["secret"]["secretName"]) is None:
            report.fail(where0, f"volume {v['name']}: Secret {v['secret']['secretName']} is not in the render")
        pvc = v.get("persistentVolumeClaim")
        if pvc and cluster.get("PersistentVolumeClaim", pvc["claimName"]) is None:
            report.fail(where0, f"volume {v['name']}: PVC {pvc['claimName']} is not in the render")
        if not any(k in v for k in sources):
            report.fail(where0, f"volume {v['name']}: unexpected source {got}")
    containers = [("initContainers", c) for c in pod_spec.get("initContainers", [])]
    containers += [("containers", c) for c in pod_spec.get("containers", [])]
    for section, c in containers:
        where = f"{where0} {section[:-1]} {c['name']}"
        if c.get("image") is None:
            report.fail(where, "no image")
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                report.fail(where, f"mounts volume {m['name']}, which the pod does not have")
        csec = c.get("securityContext", {})
        if csec.get("allowPrivilegeEscalation") is not False or not csec.get("readOnlyRootFilesystem"):
            report.fail(where, "set allowPrivilegeEscalation: false and readOnlyRootFilesystem: true")
        seen = set()
        probes_seen = set()
        for pod_name in pod_names:
            env = pod_env(report, where, cluster, c, pod_name, namespace)
            argv = container_argv(report, where, cluster, pod_spec, c, env, bin_dir)
            if argv is None:
                continue
            prog = os.path.basename(argv[0])
            for df, progs in shipped.items():
                if prog not in progs:
                    report.fail(where, f"runs {prog}, which {os.path.relpath(df, ROOT)} does not ship (MOE_BINARIES)")
            key = tuple(argv)
            if key not in seen:
                seen.add(key)
                flag_check(report, f"{where} [{pod_name}]", bin_dir, argv)
                check_files(report, where, cluster, pod_spec, c, argv)
            if section != "containers":
                continue
            port = listen_port(argv)
            cports = {p["containerPort"]: p.get("name") for p in c.get("ports", [])}
            if port is not None and port not in cports:
                report.fail(where, f"--listen port {port} is not a containerPort ({sorted(cports)})")
            tls = bool(flag_values(argv).get("tls-cert"))
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                p = c.get(probe)
                if p is None:
                    report.fail(where, f"no {probe}")
                    continue
                if "grpc" in p:
                    if tls:
                        report.fail(where, f"{probe}: the kubelet's gRPC probe cannot speak TLS, and {prog} serves "
                                    f"TLS (--tls-cert): use an exec probe running {HEALTH_PROBE} with TLS flags")
                    elif port is not None and p["grpc"]["port"] != port:
                        report.fail(where, f"{probe} asks port {p['grpc']['port']}, the process listens on {port}")
                elif "exec" in p:
                    command = p["exec"].get("command", [])
                    sflags = flag_values(argv)
                    pkey = (tuple(command), prog, port) + tuple(sflags.get(f) for f in FILE_FLAGS)
                    if pkey not in probes_seen:
                        probes_seen.add(pkey)
                        check_exec_probe(report, f"{where} {probe}", cluster, pod_spec, c, argv, port, command,
                                         bin_dir, shipped)
                else:
                    report.fail(where, f"{probe} must ask the gRPC health service (grpc:, or exec: {HEALTH_PROBE})")
            res = c.get("resources", {})
            if not res.get("requests") or "memory" not in res.get("limits", {}):
                report.fail(where, "needs resource requests and a memory limit")


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_wiring(report, cluster, bin_dir, shipped):
    namespace_of = lambda o: o["metadata"].get("namespace", "default")
    workloads = [w for k in WORKLOAD_KINDS for w in cluster.all(k)]
    placement = None
    for cm in cluster.all("ConfigMap"):
        if cm["metadata"]["name"].startswith("moe-placement"):
            placement = cm.get("data", {})
    for w in workloads:
        spec = w["spec"]
        tmpl_labels = spec["template"]["metadata"].get("labels", {})
        where = f"{cluster.name}: {w['kind']}/{w['metadata']['name']}"
        if not labels_match(spec["selector"].get("matchLabels"), tmpl_labels):
            report.fail(where, "selector does not match the pod template's labels")
        replicas = spec.get("replicas", 1)
        if not isinstance(replicas, int):
            report.fail(where, f"replicas {replicas!r} is not an integer")
            continue
        if w["kind"] == "StatefulSet":
            pod_names = [f"{w['metadata']['name']}-{i}" for i in range(replicas)]
            svc = cluster.get("Service", spec.get("serviceName"))
            if svc is None or svc["spec"].get("clusterIP") != "None":
                report.fail(where, f"serviceName {spec.get('serviceName')} is not a headless Service of the render")
            role = {"moe-expert-worker": "workers", "moe-router": "routers"}.get(w["metadata"]["name"])
            if role and placement is not None and str(replicas) != placement.get(role, "").strip():
                report.fail(where, f"replicas {replicas}, but the placement ConfigMap says {role}="
                            f"{placement.get(role)}")
        else:
            pod_names = [f"{w['metadata']['name']}-0"]
        check_pod(report, cluster, w, spec["template"]["spec"], pod_names, namespace_of(w), bin_dir, shipped)

    def pods_selected(selector):
        return [w for w in workloads if labels_match(selector, w["spec"]["template"]["metadata"].get("labels", {}))]

    def container_ports(ws):
        ports = {}
        for w in ws:
            for c in w["spec"]["template"]["spec"]["containers"]:
                for p in c.get("ports", []):
                    ports[p["containerPort"]] = p.get("name")
        return ports

    for s in cluster.all("Service"):
        where = f"{cluster.name}: Service/{s['metadata']['name']}"
        ws = pods_selected(s["spec"].get("selector"))
        if not ws:
            report.fail(where, "selects no workload of the render")
            continue
        ports = container_ports(ws)
        for p in s["spec"].get("ports", []):
            tp = p.get("targetPort", p["port"])
            if isinstance(tp, str) and tp not in ports.values():
                report.fail(where, f"targetPort '{tp}' is not a named container port")
    for np in cluster.all("NetworkPolicy"):
        where = f"{cluster.name}: NetworkPolicy/{np['metadata']['name']}"
        sel = np["spec"]["podSelector"].get("matchLabels")
        ws = pods_selected(sel)
        if sel and not ws:
            report.fail(where, "selects no workload of the render")
        ports = container_ports(ws)
        pending = {int(x) for x in np["metadata"].get("annotations", {}).get("moe-cluster/pending-ports", "").split(",")
                   if x.strip()}
        for port in sorted(pending):
            report.note(f"{where}: port {port} is marked pending (no container serves it yet)")
        for rule in np["spec"].get("ingress", []):
            for p in rule.get("ports", []):
                if sel and p.get("port") not in ports and p.get("port") not in pending:
                    report.fail(where, f"allows port {p.get('port')}, which the selected pods do not serve")
            for peer in rule.get("from", []):
                if "podSelector" in peer and not pods_selected(peer["podSelector"].get("matchLabels")):
                    report.fail(where, "allows traffic from a podSelector that matches no workload")
    for pdb in cluster.all("PodDisruptionBudget"):
        if not pods_selected(pdb["spec"]["selector"].get("matchLabels")):
            report.fail(f"{cluster.name}: PodDisruptionBudget/{pdb['metadata']['name']}", "selects no workload")
    for hpa in cluster.all("HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        if cluster.get(ref["kind"], ref["name"]) is None:
            report.fail(f"{cluster.name}: HorizontalPodAutoscaler/{hpa['metadata']['name']}",
                        f"targets {ref['kind']}/{ref['name']}, which is not in the render")
    for sm in cluster.all("ServiceMonitor"):
        where = f"{cluster.name}: ServiceMonitor/{sm['metadata']['name']}"
        svcs = [s for s in cluster.all("Service")
                if labels_match(sm["spec"]["selector"].get("matchLabels"), s["metadata"].get("labels", {}))]
        if not svcs:
            report.fail(where, "selects no Service of the render")
        names = {p.get("name") for s in svcs for p in s["spec"].get("ports", [])}
        for ep in sm["spec"].get("endpoints", []):
            if ep.get("port") and ep["port"] not in names:
                report.fail(where, f"endpoint port '{ep['port']}' is not a port of the selected Services")


# --- step 5 -------------------------------------------------------------------

def check_images(report, bin_dir, shipped):
    entry_text = open(ENTRYPOINT, encoding="utf-8").read()
    started = set(re.findall(r'"\$bin/(moe-[a-z-]+)"', entry_text))
    for df, progs in shipped.items():
        rel = os.path.relpath(df, ROOT)
        text = open(df, encoding="utf-8").read()
        if not progs:
            report.fail(rel, "no ARG MOE_BINARIES=\"...\" list")
        for p in sorted(progs):
            if not os.path.exists(os.path.join(bin_dir, p)):
                report.fail(rel, f"ships {p}, which the project does not build")
        for p in sorted(started - progs):
            report.fail(rel, f"moe-entrypoint can start {p}, which the image does not ship")
        users = re.findall(r"^USER\s+(\S+)", text, re.M)
        if not users or not re.fullmatch(r"[1-9][0-9]*(:[1-9][0-9]*)?", users[-1]):
            report.fail(rel, f"the final USER must be a numeric non-root uid (got {users[-1:]})")
        if "COPY deploy/docker/entrypoint.sh /usr/local/bin/moe-entrypoint" not in text:
            report.fail(rel, "does not install deploy/docker/entrypoint.sh as /usr/local/bin/moe-entrypoint")
        if not re.search(r'^ENTRYPOINT \["moe-entrypoint"\]', text, re.M):
            report.fail(rel, 'ENTRYPOINT must be ["moe-entrypoint"]')
        m = re.search(r"^HEALTHCHECK .*?\n\s+CMD (.+)$", text, re.M)
        if not m:
            report.fail(rel, "no HEALTHCHECK")
        else:
            argv = [a.replace("$MOE_HEALTH_ADDRESS", "127.0.0.1:50051") for a in shlex.split(m.group(1))]
            if os.path.basename(argv[0]) not in progs:
                report.fail(rel, f"HEALTHCHECK runs {argv[0]}, which the image does not ship")
            flag_check(report, f"{rel} HEALTHCHECK", bin_dir, argv)
        for src in re.findall(r"^COPY (?!--from)(\S+) \S+$", text, re.M):
            if src != "." and not os.path.exists(os.path.join(ROOT, src)):
                report.fail(rel, f"copies {src}, which is not in the repository")
    progs = sorted(set().union(*shipped.values()))
    paths = [os.path.join(bin_dir, p) for p in progs if os.path.exists(os.path.join(bin_dir, p))]
    if shutil.which("dpkg") and shutil.which("ldd") and paths:
        r = subprocess.run(["sh", os.path.join(DOCKER, "runtime-packages.sh")] + paths, capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0 or not r.stdout.strip():
            report.fail("deploy/docker/runtime-packages.sh", r.stderr.strip() or "printed no package")
        else:
            report.note("images: runtime packages of the local build: " + " ".join(r.stdout.split()))


def self_test(bin_dir, objects_by_overlay):
    """Breaks copies of the tiny-cpu render (and, for TLS, of the
    all-components render) in known ways; each must be caught."""
    import copy
    for name in ("tiny-cpu", "all-components"):
        if name not in objects_by_overlay:
            return [f"self-test: no {name} render"]
    shipped = {df: dockerfile_binaries(df) for df in DOCKERFILES}

    def find(objs, kind, name):
        return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)

    def container(objs, kind, name):
        return find(objs, kind, name)["spec"]["template"]["spec"]["containers"][0]

    def m_unknown_field(objs):
        container(objs, "Deployment", "moe-gateway")["livenessProbes"] = {}

    def m_unknown_nested(objs):
        find(objs, "StatefulSet", "moe-router")["spec"]["template"]["spec"]["containers"][0]["resources"]["limit"] = {}

    def m_wrong_type(objs):
        find(objs, "StatefulSet", "moe-expert-worker")["spec"]["replicas"] = "two"

    def m_unknown_flag(objs):
        container(objs, "StatefulSet", "moe-router")["args"].append("--no-such-flag=1")

    def m_future_flag(objs):
        container(objs, "Deployment", "moe-gateway")["args"].append("--tls-cert-file=/etc/moe/tls/tls.crt")

    def m_bad_value(objs):
        container(objs, "StatefulSet", "moe-expert-worker")["args"].append("--threads=many")

    def m_replicas(objs):
        find(objs, "StatefulSet", "moe-expert-worker")["spec"]["replicas"] = 3

    def m_two_sources(objs):
        vols = find(objs, "StatefulSet", "moe-router")["spec"]["template"]["spec"]["volumes"]
        vols[0]["persistentVolumeClaim"] = {"claimName": "moe-models"}

    def m_probe_port(objs):
        container(objs, "StatefulSet", "moe-router")["readinessProbe"]["grpc"]["port"] = 7101

    def m_target_port(objs):
        find(objs, "Service", "moe-gateway")["spec"]["ports"][0]["targetPort"] = "metrics"

    def m_unbuilt(objs):
        container(objs, "Deployment", "moe-gateway")["command"] = ["moe-openai-proxy"]

    def m_root(objs):
        find(objs, "Deployment", "moe-gateway")["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 0

    tls_flags = ["--tls-cert=/etc/moe/tls/tls.crt", "--tls-key=/etc/moe/tls/tls.key"]

    def m_tls_grpc_probe(objs):
        container(objs, "Deployment", "moe-gateway")["args"] += tls_flags

    def m_unmounted_file(objs):
        container(objs, "StatefulSet", "moe-router")["args"].append("--tls-ca=/etc/moe/tls/ca.crt")

    def m_missing_key(objs):
        container(objs, "Deployment", "moe-gateway")["args"].append("--api-keys-file=/etc/moe/api-keys/api-keys.txt")

    # On the all-components render (components/tls: exec probes, mutual TLS).
    def probe_command(objs, kind, name, probe):
        return container(objs, kind, name)[probe]["exec"]["command"]

    def m_exec_probe_port(objs):
        cmd = probe_command(objs, "StatefulSet", "moe-expert-worker", "readinessProbe")
        cmd[:] = [a.replace("127.0.0.1:7001", "127.0.0.1:7002") for a in cmd]

    def m_exec_probe_flag(objs):
        probe_command(objs, "StatefulSet", "moe-router", "startupProbe").append("--timeout=1500")

    def m_probe_plaintext(objs):
        cmd = probe_command(objs, "Deployment", "moe-gateway", "livenessProbe")
        cmd[:] = [a for a in cmd if not a.startswith("--tls")]

    def m_probe_no_client_cert(objs):
        cmd = probe_command(objs, "StatefulSet", "moe-router", "livenessProbe")
        cmd[:] = [a for a in cmd if not a.startswith(("--tls-cert", "--tls-key"))]

    def m_probe_not_shipped(objs):
        probe_command(objs, "StatefulSet", "moe-expert-worker", "startupProbe")[0] = "grpc_health_probe"

    cases = [
        ("tiny-cpu", m_unknown_field, "Additional properties are not allowed ('livenessProbes'"),
        ("tiny-cpu", m_unknown_nested, "Additional properties are not allowed ('limit'"),
        ("tiny-cpu", m_wrong_type, "'two' is not of type 'integer'"),
        ("tiny-cpu", m_unknown_flag, "Unknown command line flag 'no_such_flag'"),
        ("tiny-cpu", m_future_flag, "Unknown command line flag 'tls_cert_file'"),
        ("tiny-cpu", m_bad_value, "Illegal value 'many' specified for flag 'threads'"),
        ("tiny-cpu", m_replicas, "the placement ConfigMap says workers=2"),
        ("tiny-cpu", m_two_sources, "has 2 sources"),
        ("tiny-cpu", m_probe_port, "readinessProbe asks port 7101"),
        ("tiny-cpu", m_target_port, "targetPort 'metrics' is not a named container port"),
        ("tiny-cpu", m_unbuilt, "which the project does not build"),
        ("tiny-cpu", m_root, "non-zero runAsUser"),
        ("tiny-cpu", m_tls_grpc_probe, "the kubelet's gRPC probe cannot speak TLS"),
        ("tiny-cpu", m_unmounted_file, "--tls-ca=/etc/moe/tls/ca.crt is not under any volumeMount"),
        ("tiny-cpu", m_missing_key, "has no key 'api-keys.txt'"),
        ("all-components", m_exec_probe_port, "readinessProbe: asks port 7002, the process listens on 7001"),
        ("all-components", m_exec_probe_flag, "moe-health-probe rejects its arguments: Unknown command line flag 'timeout'"),
        ("all-components", m_probe_plaintext, "speaks plaintext to moe-gateway"),
        ("all-components", m_probe_no_client_cert, "moe-router requires a client certificate"),
        ("all-components", m_probe_not_shipped, "runs grpc_health_probe, which deploy/docker/Dockerfile.cpu does not ship"),
    ]
    problems = []
    for overlay, mutate, want in cases:
        objs = copy.deepcopy(objects_by_overlay[overlay])
        mutate(objs)
        report = Report()
        validate_schemas(report, {overlay: objs})
        check_wiring(report, Cluster(overlay, objs), bin_dir, shipped)
        if not any(want in f for f in report.failures):
            problems.append(f"self-test {mutate.__name__}: want a failure containing {want!r}, got "
                            f"{report.failures or 'none'}")
        else:
            print(f"self-test {mutate.__name__}: caught")
    return problems


def main():
    global kubectl_why
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", required=True, help="the build's bin directory (build/bin)")
    ap.add_argument("--kubectl", default=None, help="kubectl to render with (default: from PATH)")
    ap.add_argument("--update", action="store_true", help="rewrite deploy/k8s/rendered/ from the overlays")
    ap.add_argument("--self-test", action="store_true",
                    help="also break copies of the tiny-cpu and all-components renders in known ways and require "
                    "each to be caught")
    a = ap.parse_args()
    bin_dir = os.path.abspath(a.bin_dir)
    report = Report()
    kubectl, kubectl_why = find_kubectl(a.kubectl)
    if kubectl is None and os.environ.get("MOE_TEST_STRICT") == "1":
        sys.exit("check.py: " + kubectl_why + " (MOE_TEST_STRICT=1: scripts/install-kubectl.sh installs it; "
                 "the renders must be compared, not skipped)")
    if kubectl:
        report.note("render: " + kubectl_why)
    elif a.update:
        sys.exit(f"check.py --update needs kubectl with kustomize v5: {kubectl_why}")
    objects = render(report, kubectl, a.update)
    validate_schemas(report, objects)
    shipped = {df: dockerfile_binaries(df) for df in DOCKERFILES}
    for name, objs in objects.items():
        check_wiring(report, Cluster(name, objs), bin_dir, shipped)
    check_images(report, bin_dir, shipped)
    if a.self_test:
        report.failures += self_test(bin_dir, objects)
    for n in report.notes:
        print(n)
    for f in report.failures:
        print("FAIL " + f)
    checked = sum(len(o) for o in objects.values())
    print(f"check.py: {len(objects)} renders, {checked} objects, {len(report.failures)} failures")
    return 1 if report.failures else 0


kubectl_why = ""

if __name__ == "__main__":
    sys.exit(main())
