#!/usr/bin/env python3
"""Generate a packageable Node.js Serverless Framework v3 service for benchmarking.

Usage: python3 bench/gen_node_service.py OUT_DIR [--functions 200]

Writes, into OUT_DIR:

  serverless.yml      SF v3, provider aws, runtime nodejs20.x, N functions `fN` with
                      handler `src/fN.handler` and an httpApi `GET /fN` event each.
                      `package.individually` is true by default; `--param=mode=single`
                      (osls and ferry both take `--param`) switches it to false through
                      `${self:custom.individually.${param:mode, 'individual'}}`, so both
                      packaging modes of osls run on the very same files. A `!.ferry/**`
                      pattern keeps ferry's cache out of osls's zips (ferry skips
                      `.serverless/` by itself).
  src/fN.js           N small handlers, plus src/lib/*.js shared by them.
  package.json        8 `dependencies` and 4 `devDependencies`.
  node_modules/       what `npm install` would leave: 32 production packages (8 direct,
                      22 hoisted transitive ones, 2 nested under the package that needs an
                      older version; 3 scoped) and 10 development-only ones, each with a
                      package.json, index.js, lib/*.js, README.md and LICENSE, a few with
                      `bin` entries linked from node_modules/.bin, and npm's hidden lockfile
                      node_modules/.package-lock.json.
  package-lock.json   lockfileVersion 3 matching node_modules, dev-only packages marked
                      `"dev": true`. `debug-lite` is needed by a production package and by a
                      dev one, so it is production (not dev), as npm marks it.
  README.md, .gitignore

The tree is loadable: `node -e "require('./src/f1').handler({})"` works. It is deterministic
(a fixed random seed) and uses only the standard library. The names are made up so that no
real package can be confused with them; `resolved` URLs point to an `.invalid` host and are
never fetched.

Everything below node_modules that is development-only is listed in `DEV_ONLY` (top-level
folders), so a check can assert it is absent from an artifact; `PROD_SAMPLES` are paths
that must be present.
"""

import argparse
import base64
import hashlib
import json
import os
import random
import sys

# name -> (version, {dep: spec}, number of lib files, bin names)
PROD = {
    # declared in package.json "dependencies"
    "@acme/logger": ("3.2.1", {"debug-lite": "^4.3.0", "fast-json-lite": "^2.0.0"}, 6, []),
    "@acme/config": ("1.4.0", {"yaml-lite": "^2.3.0", "deepmerge-lite": "^4.2.2"}, 4, []),
    "http-router": ("5.1.3", {"path-match": "^1.2.0", "qs-lite": "^6.11.0", "mime-db-lite": "^1.52.0", "statuses-lite": "^2.0.1"}, 10, []),
    "db-client": ("8.0.2", {"pool-lite": "^3.1.0", "retry-lite": "^0.13.1", "debug-lite": "^4.3.0", "ms-lite": "^1.0.0", "buffer-writer-lite": "^2.0.0"}, 12, []),
    "json-schema-lite": ("0.9.4", {"fast-deep-equal-lite": "^3.1.3", "uri-js-lite": "^4.4.1"}, 8, []),
    "date-utils": ("2.30.0", {"@acme/tz-data": "^2024.1.0"}, 9, []),
    "uuid-gen": ("9.0.1", {}, 5, ["uuid"]),
    "aws-lite-sdk": ("0.21.9", {"@acme/signer": "^1.0.3", "xml-lite": "^1.0.0", "retry-lite": "^0.13.1", "http-agent-lite": "^7.0.2"}, 11, []),
    # hoisted transitive dependencies
    "debug-lite": ("4.3.4", {"ms-lite": "^2.1.2"}, 3, []),
    "ms-lite": ("2.1.3", {}, 1, []),
    "fast-json-lite": ("2.7.0", {}, 3, []),
    "yaml-lite": ("2.3.4", {}, 9, ["yaml"]),
    "deepmerge-lite": ("4.3.1", {}, 1, []),
    "path-match": ("1.2.4", {"path-to-regexp-lite": "^6.2.1"}, 2, []),
    "path-to-regexp-lite": ("6.2.1", {}, 2, []),
    "qs-lite": ("6.11.2", {"side-channel-lite": "^1.0.4"}, 4, []),
    "side-channel-lite": ("1.0.4", {}, 2, []),
    "mime-db-lite": ("1.52.0", {}, 2, []),
    "statuses-lite": ("2.0.1", {}, 1, []),
    "pool-lite": ("3.1.1", {}, 3, []),
    "retry-lite": ("0.13.1", {}, 2, []),
    "buffer-writer-lite": ("2.0.0", {}, 1, []),
    "fast-deep-equal-lite": ("3.1.3", {}, 1, []),
    "uri-js-lite": ("4.4.1", {"punycode-lite": "^2.3.0"}, 3, []),
    "punycode-lite": ("2.3.1", {}, 1, []),
    "@acme/tz-data": ("2024.1.0", {}, 8, []),
    "@acme/signer": ("1.0.3", {}, 3, []),
    "xml-lite": ("1.0.11", {"sax-lite": "^1.2.4"}, 3, []),
    "sax-lite": ("1.3.0", {}, 1, []),
    "http-agent-lite": ("7.1.0", {"debug-lite": "^4.3.0"}, 2, []),
}

# Installed under another package's node_modules (path -> (version, deps, files, bins)):
# the dependent wants a version that conflicts with the hoisted one.
NESTED = {
    "node_modules/db-client/node_modules/ms-lite": ("1.0.0", {}, 1, []),
    "node_modules/http-router/node_modules/path-to-regexp-lite": ("0.1.7", {}, 1, []),
}
# The specs above that the nested copies satisfy (so `npm ls` finds the tree valid).
PROD["http-router"][1]["path-to-regexp-lite"] = "0.1.7"

DEV = {
    # declared in package.json "devDependencies"
    "test-runner": ("29.7.0", {"pretty-format-lite": "^29.7.0", "diff-lite": "^5.1.0", "glob-lite": "^10.3.0"}, 14, ["test-runner"]),
    "lint-kit": ("8.56.0", {"ast-walker": "^3.0.0", "glob-lite": "^10.3.0", "debug-lite": "^4.3.0"}, 12, ["lint-kit"]),
    "@acme/eslint-config": ("2.1.0", {}, 2, []),
    "mock-aws": ("6.2.0", {"debug-lite": "^4.3.0"}, 6, []),
    # transitive, development-only
    "pretty-format-lite": ("29.7.0", {}, 5, []),
    "diff-lite": ("5.2.0", {}, 4, []),
    "glob-lite": ("10.3.10", {"minimatch-lite": "^9.0.1"}, 4, []),
    "minimatch-lite": ("9.0.3", {"brace-expansion-lite": "^2.0.1"}, 3, []),
    "brace-expansion-lite": ("2.0.1", {}, 1, []),
    "ast-walker": ("3.4.1", {}, 6, []),
}

DIRECT_PROD = ["@acme/logger", "@acme/config", "http-router", "db-client",
               "json-schema-lite", "date-utils", "uuid-gen", "aws-lite-sdk"]
DIRECT_DEV = ["test-runner", "lint-kit", "@acme/eslint-config", "mock-aws"]

#: Top-level node_modules folders that must not be in a production artifact.
DEV_ONLY = ["node_modules/" + n for n in DEV]
#: Files that must be in a production artifact.
PROD_SAMPLES = [
    "node_modules/db-client/index.js",
    "node_modules/debug-lite/index.js",  # shared by a prod and a dev package: production
    "node_modules/@acme/tz-data/package.json",  # scoped, transitive
    "node_modules/db-client/node_modules/ms-lite/package.json",  # nested
    "src/f1.js",
]

REGISTRY = "https://registry.example.invalid"
WORDS = ("value options result buffer state config handler stream token record "
         "entry cache parse format merge resolve encode decode request response").split()


def js_file(rng: random.Random, pkg: str, i: int) -> str:
    """A small CommonJS module (0.5 to 4 KB)."""
    out = ["'use strict';", f"// {pkg} lib/m{i}.js (generated)", ""]
    for k in range(rng.randint(3, 20)):
        a, b = rng.choice(WORDS), rng.choice(WORDS)
        out += [
            f"function {a}{k}({b}, opts) {{",
            f"  const out = Object.assign({{}}, opts, {{ {a}: {b} }});",
            f"  if (out.{b} === undefined) out.{b} = {rng.randint(0, 9999)};",
            f"  return JSON.stringify(out).length + {k};",
            "}",
            "",
        ]
    names = [ln.split()[1].split("(")[0] for ln in out if ln.startswith("function ")]
    out.append("module.exports = { " + ", ".join(names) + " };")
    return "\n".join(out) + "\n"


def write(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


def integrity(name: str, version: str) -> str:
    digest = hashlib.sha512(f"{name}@{version}".encode()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def tarball(name: str, version: str) -> str:
    base = name.split("/")[-1]
    return f"{REGISTRY}/{name}/-/{base}-{version}.tgz"


def write_package(root: str, rel: str, name: str, meta, rng: random.Random) -> None:
    version, deps, nlib, bins = meta
    d = os.path.join(root, rel)
    pkg = {"name": name, "version": version, "description": f"{name} (generated for ferry's benchmark)",
           "main": "index.js", "license": "MIT"}
    if deps:
        pkg["dependencies"] = dict(sorted(deps.items()))
    if bins:
        pkg["bin"] = {b: f"bin/{b}.js" for b in bins}
    write(os.path.join(d, "package.json"), json.dumps(pkg, indent=2) + "\n")
    requires = [f"const d{j} = require('{dep}');" for j, dep in enumerate(sorted(deps))]
    libs = [f"  m{i}: require('./lib/m{i}')," for i in range(nlib)]
    write(os.path.join(d, "index.js"),
          "'use strict';\n" + "\n".join(requires) + "\n\nmodule.exports = {\n"
          f"  name: '{name}',\n  version: '{version}',\n" + "\n".join(libs) + "\n};\n")
    for i in range(nlib):
        write(os.path.join(d, "lib", f"m{i}.js"), js_file(rng, name, i))
    for b in bins:
        write(os.path.join(d, "bin", f"{b}.js"),
              f"#!/usr/bin/env node\n'use strict';\nconsole.log(require('..').name);\n", 0o755)
    write(os.path.join(d, "README.md"), f"# {name}\n\nGenerated package {name}@{version}.\n")
    write(os.path.join(d, "LICENSE"), "MIT License\n\nCopyright (c) generated\n")


def lock_entry(name: str, meta, dev: bool) -> dict:
    version, deps, _, bins = meta
    e = {"version": version, "resolved": tarball(name, version),
         "integrity": integrity(name, version)}
    if dev:
        e["dev"] = True
    e["license"] = "MIT"
    if deps:
        e["dependencies"] = dict(sorted(deps.items()))
    if bins:
        e["bin"] = {b: f"bin/{b}.js" for b in bins}
    return e


HANDLER = """'use strict';

const { uuid } = require('uuid-gen');
const logger = require('@acme/logger');
const router = require('http-router');
const { respond } = require('./lib/respond');

module.exports.handler = async (event) => {
  const id = typeof uuid === 'function' ? uuid() : '%(name)s';
  return respond(200, { fn: '%(name)s', id, path: event && event.rawPath,
                        logger: logger.name, router: router.version });
};
"""

RESPOND = """'use strict';

module.exports.respond = (statusCode, body) => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});
"""


def manifest(n: int) -> str:
    out = [
        "# Generated by bench/gen_node_service.py; do not edit.",
        "service: bench-node",
        "frameworkVersion: '>=3'",
        "",
        "custom:",
        "  # `--param=mode=single` packages the service as one zip (osls's default);",
        "  # without it, one zip per function.",
        "  individually:",
        "    individual: true",
        "    single: false",
        "",
        "provider:",
        "  name: aws",
        "  runtime: nodejs20.x",
        "  stage: dev",
        "  region: us-east-1",
        "",
        "package:",
        "  individually: ${self:custom.individually.${param:mode, 'individual'}}",
        "  # osls packages every file that no pattern excludes, ferry's cache included;",
        "  # ferry already skips `.ferry/` (and `.serverless/`).",
        "  patterns:",
        "    - '!.ferry/**'",
        "",
        "functions:",
    ]
    for i in range(1, n + 1):
        out += [
            f"  f{i}:",
            f"    handler: src/f{i}.handler",
            "    events:",
            "      - httpApi:",
            "          method: GET",
            f"          path: /f{i}",
        ]
    return "\n".join(out) + "\n"


def generate(root: str, n: int) -> dict:
    rng = random.Random(20240601)
    os.makedirs(root, exist_ok=True)
    write(os.path.join(root, "serverless.yml"), manifest(n))
    for i in range(1, n + 1):
        write(os.path.join(root, "src", f"f{i}.js"), HANDLER % {"name": f"f{i}"})
    write(os.path.join(root, "src", "lib", "respond.js"), RESPOND)
    for i in range(3):
        write(os.path.join(root, "src", "lib", f"util{i}.js"), js_file(rng, "src", i))
    write(os.path.join(root, "README.md"), "# bench-node\n\nGenerated by bench/gen_node_service.py.\n")
    write(os.path.join(root, ".gitignore"), "node_modules/\n.serverless/\n.ferry/\n")

    def spec(name: str, table) -> str:
        return "^" + table[name][0]

    root_pkg = {
        "name": "bench-node", "version": "1.0.0", "private": True,
        "description": "Generated by bench/gen_node_service.py",
        "dependencies": {d: spec(d, PROD) for d in sorted(DIRECT_PROD)},
        "devDependencies": {d: spec(d, DEV) for d in sorted(DIRECT_DEV)},
    }
    write(os.path.join(root, "package.json"), json.dumps(root_pkg, indent=2) + "\n")

    packages = {}
    for name in sorted(PROD):
        rel = f"node_modules/{name}"
        write_package(root, rel, name, PROD[name], rng)
        packages[rel] = lock_entry(name, PROD[name], False)
    for rel in sorted(NESTED):
        name = rel.rsplit("node_modules/", 1)[1]
        write_package(root, rel, name, NESTED[rel], rng)
        packages[rel] = lock_entry(name, NESTED[rel], False)
    for name in sorted(DEV):
        rel = f"node_modules/{name}"
        write_package(root, rel, name, DEV[name], rng)
        packages[rel] = lock_entry(name, DEV[name], True)

    bindir = os.path.join(root, "node_modules", ".bin")
    os.makedirs(bindir, exist_ok=True)
    for table in (PROD, DEV):
        for name, (_, _, _, bins) in table.items():
            for b in bins:
                link = os.path.join(bindir, b)
                if os.path.lexists(link):
                    os.remove(link)
                os.symlink(f"../{name}/bin/{b}.js", link)

    root_entry = {k: root_pkg[k] for k in ("name", "version", "dependencies", "devDependencies")}
    lock = {"name": "bench-node", "version": "1.0.0", "lockfileVersion": 3, "requires": True,
            "packages": {"": root_entry, **dict(sorted(packages.items()))}}
    write(os.path.join(root, "package-lock.json"), json.dumps(lock, indent=2) + "\n")
    # npm's hidden lockfile, written last (npm trusts it only when it is newer than every
    # package folder).
    hidden = {"name": "bench-node", "version": "1.0.0", "lockfileVersion": 3, "requires": True,
              "packages": dict(sorted(packages.items()))}
    write(os.path.join(root, "node_modules", ".package-lock.json"), json.dumps(hidden, indent=2) + "\n")

    files = {"src": 0, "prod": 0, "dev": 0}
    for dirpath, _, names in os.walk(os.path.join(root, "node_modules")):
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        top = "/".join(rel.split("/")[:3 if rel.startswith("node_modules/@") else 2])
        if top in DEV_ONLY:
            files["dev"] += len(names)
        elif top.startswith("node_modules/") and not top.startswith("node_modules/."):
            files["prod"] += len(names)
    for _, _, names in os.walk(os.path.join(root, "src")):
        files["src"] += len(names)
    return {"functions": n, "prod_packages": len(PROD) + len(NESTED), "dev_packages": len(DEV),
            "files": files, "dev_only": DEV_ONLY, "prod_samples": PROD_SAMPLES}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", help="folder to write the service into (created if missing)")
    p.add_argument("--functions", "-n", type=int, default=200, help="number of functions (default 200)")
    a = p.parse_args(argv)
    if a.functions < 1:
        p.error("--functions must be at least 1")
    info = generate(a.out_dir, a.functions)
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
