"""openapi.yaml held to functions.json and to the TypeScript client (scripts/lib/check-openapi).

- Every function's paths and methods are the document's, no more and no fewer; each operation
  names its function (`x-function`) and its body limit (`x-max-body-bytes`) as functions.json does.
- Every interface of clients/typescript/meta-capi.ts marked `openapi: NAME` has the properties of
  the schema NAME, no more and no fewer, and marks optional exactly those the schema does not
  require.

Usage: python openapi_check.py ROOT   (exits 1 with every difference listed)
"""

import json
import re
import sys

import yaml

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def operations(document):
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method.upper(), operation


def check_functions(document, manifest):
    problems = []
    expected = {}
    for function in manifest["functions"]:
        if function.get("planned"):
            continue
        for path in function["paths"]:
            for method in function["methods"]:
                expected[(path, method)] = function
    found = {(path, method): operation for path, method, operation in operations(document)}
    for key in sorted(set(expected) - set(found)):
        problems.append(f"{key[1]} {key[0]} is in functions.json but not in openapi.yaml")
    for key in sorted(set(found) - set(expected)):
        problems.append(f"{key[1]} {key[0]} is in openapi.yaml but not in functions.json")
    for key in sorted(set(found) & set(expected)):
        function, operation = expected[key], found[key]
        if operation.get("x-function") != function["name"]:
            problems.append(f"{key[1]} {key[0]}: x-function {operation.get('x-function')!r}, functions.json {function['name']!r}")
        if operation.get("x-max-body-bytes") != function["maxBodyBytes"]:
            problems.append(
                f"{key[1]} {key[0]}: x-max-body-bytes {operation.get('x-max-body-bytes')!r}, "
                f"functions.json {function['maxBodyBytes']}")
        if not operation.get("responses"):
            problems.append(f"{key[1]} {key[0]} lists no answers")
    return problems


def resolve(document, schema):
    while isinstance(schema, dict) and "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = document["components"]["schemas"][name]
    return schema


def schema_properties(document, name):
    schema = resolve(document, document["components"]["schemas"][name])
    properties, required = dict(schema.get("properties", {})), set(schema.get("required", []))
    for part in schema.get("allOf", []):
        part = resolve(document, part)
        properties.update(part.get("properties", {}))
        required |= set(part.get("required", []))
    return set(properties), required


def typescript_interfaces(text):
    """NAME -> {property: optional} for every interface marked `openapi: NAME`."""
    interfaces = {}
    for match in re.finditer(r"openapi: (\w+)\.?[^\n]*(?:\n \*[^\n]*)*\n(?:export )?interface \w+ \{\n(.*?)\n\}", text, re.S):
        members = {}
        for line in match.group(2).split("\n"):
            member = re.match(r"\s+(\w+)(\??):", line)
            if member:
                members[member.group(1)] = member.group(2) == "?"
        interfaces[match.group(1)] = members
    return interfaces


def check_typescript(document, text):
    problems = []
    interfaces = typescript_interfaces(text)
    if not interfaces:
        problems.append("no interface of the client is marked `openapi: NAME`")
    for name, members in sorted(interfaces.items()):
        if name not in document.get("components", {}).get("schemas", {}):
            problems.append(f"the client's {name} names no schema of openapi.yaml")
            continue
        properties, required = schema_properties(document, name)
        for missing in sorted(properties - set(members)):
            problems.append(f"{name}.{missing} is in openapi.yaml but not in the client")
        for extra in sorted(set(members) - properties):
            problems.append(f"{name}.{extra} is in the client but not in openapi.yaml")
        for member in sorted(set(members) & properties):
            if members[member] == (member in required):
                problems.append(f"{name}.{member} is {'optional' if members[member] else 'required'} in the client, "
                                f"{'required' if member in required else 'optional'} in openapi.yaml")
    return problems


def main(root):
    with open(f"{root}/openapi.yaml") as file:
        document = yaml.safe_load(file)
    with open(f"{root}/functions.json") as file:
        manifest = json.load(file)
    with open(f"{root}/clients/typescript/meta-capi.ts") as file:
        client = file.read()
    problems = check_functions(document, manifest) + check_typescript(document, client)
    for problem in problems:
        print("openapi.yaml: " + problem, file=sys.stderr)
    if problems:
        return 1
    count = sum(1 for _ in operations(document))
    print(f"openapi.yaml: {count} operations as functions.json has them; the client's types as its schemas")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
