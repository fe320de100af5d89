#!/usr/bin/env python3
"""Validates the config corpus with a real JSON Schema validator (python3-jsonschema).

Every file in good/ must be valid and every file in bad/ invalid against
schemas/stream.schema.json plus the options schema of the named transport
(schemas/transport/<name>.schema.json, or tests/configs/schemas/<name>.schema.json for
test-only transports). test_config checks the same corpus with the C parser, so both
give the same verdict. Usage: check_corpus.py <source dir>. Exit 77 = skipped.
"""
import json
import pathlib
import sys

try:
    import jsonschema
except ImportError:
    print("python3-jsonschema is not installed; skipping")
    sys.exit(77)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate object key")
    return dict(pairs)


def load_schema(path):
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def verdict(path, stream, transports):
    """(valid, reason) for one config file."""
    try:
        doc = json.loads(path.read_text(), object_pairs_hook=no_duplicates)
    except ValueError as e:
        return False, f"invalid JSON: {e}"
    err = jsonschema.exceptions.best_match(stream.iter_errors(doc))
    if err is not None:
        return False, f"{'.'.join(map(str, err.absolute_path)) or '(document)'}: {err.message}"
    name = doc["transport"]
    if name not in transports:
        return False, f"transport {name!r} has no schema"
    err = jsonschema.exceptions.best_match(transports[name].iter_errors(doc.get("options", {})))
    if err is not None:
        return False, f"options.{'.'.join(map(str, err.absolute_path))}: {err.message}"
    return True, ""


def main():
    src = pathlib.Path(sys.argv[1])
    stream = load_schema(src / "schemas" / "stream.schema.json")
    transports = {}
    for d in (src / "schemas" / "transport", src / "tests" / "configs" / "schemas"):
        for f in sorted(d.glob("*.schema.json")):
            transports[f.name[: -len(".schema.json")]] = load_schema(f)
    corpus = src / "tests" / "configs"
    failures = 0
    count = 0
    for kind, want in (("good", True), ("bad", False)):
        files = sorted((corpus / kind).glob("*.json"))
        if not files:
            print(f"no configs in {corpus / kind}")
            failures += 1
        for f in files:
            count += 1
            ok, why = verdict(f, stream, transports)
            if ok != want:
                failures += 1
                print(f"FAIL {kind}/{f.name}: schema says {'valid' if ok else 'invalid'} {why}")
            if kind == "bad" and not f.with_suffix(".expect").exists():
                failures += 1
                print(f"FAIL bad/{f.name}: no .expect file with the C parser's message")
    print(f"{count} configs, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
