#!/usr/bin/python3
"""Writes strict JSON Schemas (draft-07) for the Kubernetes kinds we render.

Source: the models of the official JavaScript client, @kubernetes/client-node,
which OpenAPI Generator produced from the Kubernetes OpenAPI spec (the header of
every model names the release, e.g. "OpenAPI spec version: release-1.36").
Each model carries `attributeTypeMap` (JSON field name, type, format) in its
.js file and marks required fields in its .d.ts file ('name': T vs 'name'?: T).
From those we write one definition per model, with additionalProperties false
everywhere (unknown fields fail, like `kubectl apply --validate=strict`), and
keep only the definitions reachable from the kinds listed in KINDS.

Usage: generate.py PACKAGE_DIR OUT.json   (PACKAGE_DIR: the unpacked npm tarball)
update.sh beside this file fetches the pinned tarball and runs this.
"""
import json
import os
import re
import sys

# apiVersion/kind -> client-node model. Add a row when a manifest gains a kind.
KINDS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "Service"): "V1Service",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2HorizontalPodAutoscaler",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
}

# Fields whose OpenAPI type is resource.Quantity: the generator flattened them
# to string, but the API server (and every manifest in the wild) also accepts a
# JSON number (`cpu: 1`). Restore that.
QUANTITY_MAPS = {
    ("V1ResourceRequirements", "limits"), ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"), ("V1VolumeResourceRequirements", "requests"),
}
QUANTITY_FIELDS = {("V1EmptyDirVolumeSource", "sizeLimit")}
QUANTITY = {"anyOf": [{"type": "string"}, {"type": "number"}]}

TYPE_MAP_RE = re.compile(r"\.attributeTypeMap = (\[.*?\]);", re.S)
SPEC_RE = re.compile(r"OpenAPI spec version: (\S+)")
FIELD_RE = re.compile(r"^    '([^']+)'(\??):", re.M)


class Models:
    def __init__(self, package_dir):
        self.dir = os.path.join(package_dir, "dist", "gen", "models")
        self.defs = {}
        self.spec_versions = set()

    def _read(self, name, ext):
        path = os.path.join(self.dir, name + ext)
        with open(path, encoding="utf-8") as f:
            return f.read()

    def schema_of_type(self, owner, field, t, fmt):
        t = t.strip()
        if (owner, field) in QUANTITY_FIELDS:
            return dict(QUANTITY)
        m = re.fullmatch(r"Array<(.+)>", t)
        if m:
            return {"type": "array", "items": self.schema_of_type(owner, None, m.group(1), "")}
        m = re.fullmatch(r"\{ \[key: string\]: (.+); \}", t)
        if m:
            if (owner, field) in QUANTITY_MAPS:
                return {"type": "object", "additionalProperties": dict(QUANTITY)}
            return {"type": "object", "additionalProperties": self.schema_of_type(owner, None, m.group(1), "")}
        if t == "string":
            return {"type": "string"}
        if t == "number":
            return {"type": "integer"} if fmt in ("int32", "int64") else {"type": "number"}
        if t == "boolean":
            return {"type": "boolean"}
        if t == "Date":
            return {"type": "string"}
        if t in ("any", "object"):
            return {}
        if t == "IntOrString":
            return {"anyOf": [{"type": "integer"}, {"type": "string"}]}
        if re.fullmatch(r"[A-Z][A-Za-z0-9]+", t):
            self.add(t)
            return {"$ref": "#/definitions/" + t}
        raise ValueError(f"{owner}.{field}: unknown type '{t}'")

    def add(self, name):
        if name in self.defs:
            return
        self.defs[name] = None  # cycle guard
        js = self._read(name, ".js")
        dts = self._read(name, ".d.ts")
        spec = SPEC_RE.search(js)
        if spec:
            self.spec_versions.add(spec.group(1))
        m = TYPE_MAP_RE.search(js)
        if not m:
            raise ValueError(f"{name}.js: no attributeTypeMap")
        attrs = json.loads(m.group(1))
        required = [f for f, opt in FIELD_RE.findall(dts) if opt == ""]
        props = {}
        for a in attrs:
            props[a["baseName"]] = self.schema_of_type(name, a["baseName"], a["type"], a["format"])
        by_name = {a["name"]: a["baseName"] for a in attrs}
        schema = {"type": "object", "properties": props, "additionalProperties": False}
        req = sorted(by_name[f] for f in required if f in by_name)
        if req:
            schema["required"] = req
        self.defs[name] = schema


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: generate.py PACKAGE_DIR OUT.json")
    package_dir, out = sys.argv[1], sys.argv[2]
    with open(os.path.join(package_dir, "package.json"), encoding="utf-8") as f:
        pkg = json.load(f)
    models = Models(package_dir)
    kinds = {}
    for (api_version, kind), model in sorted(KINDS.items()):
        models.add(model)
        kinds[f"{api_version}/{kind}"] = {
            "allOf": [{"$ref": "#/definitions/" + model}],
            "properties": {"apiVersion": {"const": api_version}, "kind": {"const": kind}},
            "required": ["apiVersion", "kind", "metadata"],
        }
    doc = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$comment": (f"Generated by deploy/k8s/schemas/generate.py from {pkg['name']}@{pkg['version']} "
                     f"({pkg['license']}), models generated from Kubernetes OpenAPI "
                     f"{', '.join(sorted(models.spec_versions))}. Strict: additionalProperties false. "
                     "Do not edit; see PROVENANCE.md."),
        "kinds": kinds,
        "definitions": dict(sorted(models.defs.items())),
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    print(f"{out}: {len(kinds)} kinds, {len(models.defs)} definitions, "
          f"spec {', '.join(sorted(models.spec_versions))}")


if __name__ == "__main__":
    main()
