#!/usr/bin/env python3
"""Validate Firecracker config files (`firecracker --config-file`) against
Firecracker's own API schema, firecracker-api.yaml (Swagger 2.0).

The file's layout is the schema's FullVmConfiguration definition: the
sections `boot-source`, `drives`, `machine-config`, `vsock`, ... each
described by a definition (BootSource, Drive, MachineConfiguration,
Vsock, ...). Checked, recursively through $ref:

  - JSON: valid, one object, no duplicate keys (serde refuses them);
  - types (an integer is not a boolean; a boolean is not an integer);
  - required properties, present and not null;
  - optional properties may be null (Firecracker's Option<T> fields);
  - enum, minimum, maximum, and the int32/int64 ranges of `format`;
  - unknown properties are refused everywhere, unless the schema says
    `additionalProperties`. The schema does not say this itself, but
    Firecracker's section structs are `#[serde(deny_unknown_fields)]`
    (BootSourceConfig, MachineConfig, BlockDeviceConfig, VsockDeviceConfig).
    Its top-level struct is not, so an unknown section name is silently
    ignored by Firecracker; refused here because in our configs it can
    only be a typo;
  - `boot-source` is required (Firecracker's VmmConfig has it as a plain,
    non-optional field);
  - a few rules Firecracker checks in code, not in the schema: vcpu_count
    1 or even when smt is on, mem_size_mib not 0, unique drive_id, at most
    one root device.

Not checked: paths exist, string `format` regexes (only MMDS uses them),
anything else Firecracker does at boot.

Usage: validate.py [--schema FILE] CONFIG.json...
Prints "OK: FILE" or "INVALID: FILE: reason" per file (every reason found).
Exit 0 if all are valid, 1 if any is invalid, 2 on usage or schema errors.
"""

import argparse
import json
import os
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover - reported to the caller
    print("validate.py: python3-yaml is missing (scripts/install-deps)", file=sys.stderr)
    sys.exit(2)

HERE = os.path.dirname(os.path.abspath(__file__))
# In a checkout, the shared reference folder sits beside the repository.
DEFAULT_SCHEMA = os.path.normpath(os.path.join(
    HERE, "..", "..", "..", "shared", "reference", "firecracker", "firecracker-api.yaml"))

INT_RANGES = {
    "int32": (-(2 ** 31), 2 ** 31 - 1),
    "int64": (-(2 ** 63), 2 ** 63 - 1),
}


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false. YAML 1.1 would
    read the Logger level enum value `Off` as the boolean False."""


Yaml12Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|false)$"),
    list("tf"))


def load_schema(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=Yaml12Loader)
    defs = doc.get("definitions") if isinstance(doc, dict) else None
    if not isinstance(defs, dict) or "FullVmConfiguration" not in defs:
        raise ValueError("%s has no definitions.FullVmConfiguration" % path)
    return defs


def no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError("duplicate key %r" % key)
        seen[key] = value
    return seen


class Validator:
    def __init__(self, defs):
        self.defs = defs
        self.errors = []

    def error(self, where, msg):
        self.errors.append("%s: %s" % (where or "(top)", msg))

    def resolve(self, schema):
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            prefix = "#/definitions/"
            if not ref.startswith(prefix) or ref[len(prefix):] not in self.defs:
                raise ValueError("unresolvable $ref %r" % ref)
            schema = self.defs[ref[len(prefix):]]
            seen += 1
            if seen > 32:
                raise ValueError("$ref loop at %r" % ref)
        return schema

    def check(self, value, schema, where):
        schema = self.resolve(schema)
        kind = schema.get("type")
        if kind is None and "properties" in schema:
            kind = "object"
        if kind == "object":
            self.check_object(value, schema, where)
        elif kind == "array":
            if not isinstance(value, list):
                self.error(where, "must be an array")
                return
            for i, item in enumerate(value):
                self.check(item, schema.get("items", {}), "%s[%d]" % (where, i))
        elif kind == "string":
            if not isinstance(value, str):
                self.error(where, "must be a string")
        elif kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                self.error(where, "must be an integer")
                return
            lo, hi = INT_RANGES.get(schema.get("format"), (None, None))
            if lo is not None and not lo <= value <= hi:
                self.error(where, "%d is out of the %s range" % (value, schema["format"]))
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.error(where, "must be a number")
                return
        elif kind == "boolean":
            if not isinstance(value, bool):
                self.error(where, "must be a boolean")
        elif kind is not None:
            raise ValueError("schema type %r at %s is not supported" % (kind, where))

        if "enum" in schema and value not in schema["enum"]:
            self.error(where, "%r is not one of %s" % (value, ", ".join(
                repr(v) for v in schema["enum"])))
        if kind in ("integer", "number") and not isinstance(value, bool) and \
                isinstance(value, (int, float)):
            if "minimum" in schema and value < schema["minimum"]:
                self.error(where, "%s is below the minimum %s" % (value, schema["minimum"]))
            if "maximum" in schema and value > schema["maximum"]:
                self.error(where, "%s is above the maximum %s" % (value, schema["maximum"]))

    def check_object(self, value, schema, where):
        if not isinstance(value, dict):
            self.error(where, "must be an object")
            return
        props = schema.get("properties", {})
        required = schema.get("required", [])
        extra = schema.get("additionalProperties", False)
        for name in required:
            if name not in value:
                self.error(where, "required property %r is missing" % name)
            elif value[name] is None:
                self.error(where, "required property %r is null" % name)
        for name, item in value.items():
            sub = "%s.%s" % (where, name) if where else name
            if name in props:
                if item is None and name not in required:
                    continue
                self.check(item, props[name], sub)
            elif extra is True:
                continue
            elif isinstance(extra, dict):
                self.check(item, extra, sub)
            else:
                self.error(where, "unknown property %r" % name)


def firecracker_rules(cfg, errors):
    """Checks Firecracker makes in code rather than in its schema."""
    if "boot-source" not in cfg or cfg.get("boot-source") is None:
        errors.append("(top): required section 'boot-source' is missing")
    mc = cfg.get("machine-config")
    if isinstance(mc, dict):
        vcpus = mc.get("vcpu_count")
        if mc.get("smt") is True and isinstance(vcpus, int) and vcpus > 1 and vcpus % 2:
            errors.append("machine-config: with smt, vcpu_count must be 1 or even")
        if mc.get("mem_size_mib") == 0:
            errors.append("machine-config: mem_size_mib must not be 0")
    drives = cfg.get("drives")
    if isinstance(drives, list):
        ids = [d.get("drive_id") for d in drives if isinstance(d, dict)]
        if len(ids) != len(set(ids)):
            errors.append("drives: drive_id values must be unique")
        roots = [d for d in drives if isinstance(d, dict) and d.get("is_root_device") is True]
        if len(roots) > 1:
            errors.append("drives: at most one drive may be the root device")


def validate_file(path, defs):
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f, object_pairs_hook=no_duplicates)
    except (OSError, ValueError) as e:
        return ["not a readable JSON file: %s" % e]
    v = Validator(defs)
    v.check(cfg, {"$ref": "#/definitions/FullVmConfiguration"}, "")
    if isinstance(cfg, dict):
        firecracker_rules(cfg, v.errors)
    return v.errors


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", default=DEFAULT_SCHEMA,
                    help="firecracker-api.yaml (default: %(default)s)")
    ap.add_argument("configs", nargs="+", metavar="CONFIG.json")
    args = ap.parse_args(argv)
    try:
        defs = load_schema(args.schema)
    except (OSError, ValueError, yaml.YAMLError) as e:
        print("validate.py: cannot load the schema: %s" % e, file=sys.stderr)
        return 2
    bad = 0
    for path in args.configs:
        try:
            errors = validate_file(path, defs)
        except ValueError as e:  # a schema we cannot interpret
            print("validate.py: %s: %s" % (path, e), file=sys.stderr)
            return 2
        if errors:
            bad += 1
            print("INVALID: %s: %s" % (path, "; ".join(errors)))
        else:
            print("OK: %s" % path)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
