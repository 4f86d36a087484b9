#!/usr/bin/env python3
"""Validates Queue and Subscription manifests against the CRDs' openAPIV3Schema (`make chart-check`).

Usage: check_examples.py CRD_FILE MANIFEST...

The structural schema becomes a JSON schema as the API server reads it: `nullable` admits null,
an object without `additionalProperties` or `x-kubernetes-preserve-unknown-fields` refuses
unknown fields (kubectl's default strict field validation), and metadata.name must be a DNS
subdomain. Every document of every manifest must be a served ferromq kind and valid. Broken
copies of the examples (bad enum, out of range, unknown field, missing field, bad pattern) must
be refused, or the check itself is broken. The CEL rules (x-kubernetes-validations) are
checked by tests/crds.rs.
"""

import copy
import sys

import jsonschema
import yaml

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def to_json_schema(node):
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (node.get("type") == "object" and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
        out.setdefault("properties", {})
    return out


def schemas_of(crds):
    """{(apiVersion, kind): JSON schema} of every served version."""
    schemas = {}
    for crd in crds:
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served"):
                continue
            api = f"{group}/{version['name']}"
            schema = to_json_schema(version["schema"]["openAPIV3Schema"])
            schema["properties"].update({
                "apiVersion": {"const": api},
                "kind": {"const": kind},
                "metadata": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "maxLength": 253, "pattern": DNS_SUBDOMAIN}}},
            })
            schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
            schemas[(api, kind)] = schema
    return schemas


def errors_of(schemas, doc):
    schema = schemas.get((doc.get("apiVersion"), doc.get("kind")))
    if schema is None:
        return [f"not a served ferromq kind: {doc.get('apiVersion')} {doc.get('kind')}"]
    validator = jsonschema.Draft7Validator(schema)
    return [f"at '{'/'.join(map(str, e.absolute_path))}': {e.message}" for e in validator.iter_errors(doc)]


def broken_copies(docs):
    """(what, manifest) pairs the API server would refuse."""
    queue = next(d for d in docs if d["kind"] == "Queue")
    push_queue = next((d for d in docs if d["kind"] == "Queue" and "push" in d["spec"]), None)
    subscription = next(d for d in docs if d["kind"] == "Subscription")

    def edit(doc, change):
        doc = copy.deepcopy(doc)
        change(doc)
        return doc

    copies = [
        ("a queue type outside the enum", edit(queue, lambda d: d["spec"].update(type="fifo"))),
        ("messageTimeout under 30", edit(queue, lambda d: d["spec"].update(messageTimeout=5))),
        ("an unknown spec field", edit(queue, lambda d: d["spec"].update(colour="red"))),
        ("an upper-case name", edit(queue, lambda d: d["metadata"].update(name="Orders"))),
        ("a Subscription without url", edit(subscription, lambda d: d["spec"].pop("url"))),
        ("an ftp:// subscriber url", edit(subscription, lambda d: d["spec"].update(url="ftp://host/x"))),
        ("a header that is not a string", edit(subscription, lambda d: d["spec"].update(headers={"X-N": 1}))),
        ("an unknown apiVersion", edit(queue, lambda d: d.update(apiVersion="ferromq.dev/v9"))),
    ]
    if push_queue:
        copies.append(("push.retries over 100", edit(push_queue, lambda d: d["spec"]["push"].update(retries=101))))
    return copies


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        schemas = schemas_of([d for d in yaml.safe_load_all(f) if d])
    failures, docs = [], []
    for path in argv[2:]:
        with open(path) as f:
            for n, doc in enumerate((d for d in yaml.safe_load_all(f) if d), 1):
                docs.append(doc)
                name = (doc.get("metadata") or {}).get("name")
                for error in errors_of(schemas, doc):
                    failures.append(f"{path} document {n} ({doc.get('kind')} {name}): {error}")
    kinds = {d.get("kind") for d in docs}
    refused = 0
    if not {"Queue", "Subscription"} <= kinds:
        failures.append(f"the manifests hold no Queue and Subscription to check (kinds: {sorted(kinds, key=str)})")
    else:
        for what, doc in broken_copies(docs):
            if errors_of(schemas, doc):
                refused += 1
            else:
                failures.append(f"the CRD schema accepted {what}")
    for failure in failures:
        print(f"  {failure}", file=sys.stderr)
    print(f"{len(docs)} documents ({', '.join(sorted(kinds, key=str))}) against {len(schemas)} CRD schemas: "
          f"{f'{len(failures)} failure(s)' if failures else 'valid'}; {refused} broken copies refused")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
