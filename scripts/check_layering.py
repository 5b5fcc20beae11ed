#!/usr/bin/env python3
"""Fails when `tsh` or `tctl` would link the auth server, a backend, the web framework or the node's
session code (TeleportNode), when the shared SSH modules (TeleportSSH, TeleportSSHClient) would
import a service or a client CLI, or when a module imports one that sits above it in
docs/architecture.md's layers.

Reads `swift package dump-package` (the declared dependencies) and the `import` lines of Sources/.
"""
import json
import os
import re
import subprocess
import sys

FORBIDDEN_FOR_CLIENTS = {
    "TeleportAuthServer", "TeleportBackend", "TeleportBackendSQLite", "TeleportBackendEtcd", "TeleportBackendPostgres",
    "TeleportDaemon", "TeleportProxy", "TeleportNode", "TeleportDatabase", "TeleportHTTPListener", "TeleportApp", "TeleportKube", "Hummingbird", "HummingbirdTLS", "HummingbirdCore",
    "SQLiteNIO", "PostgresNIO",
}
LAYERS = {
    "TeleportAPI": 0, "TeleportCrypto": 0, "TeleportWire": 0,
    "TeleportAccess": 1, "TeleportBackend": 1, "TeleportHTTP": 1, "TeleportEvents": 1, "TeleportHTTPListener": 1,
    "TeleportBackendSQLite": 2, "TeleportBackendEtcd": 2, "TeleportBackendPostgres": 2, "TeleportServices": 2, "TeleportSSH": 2,
    "TeleportAuthClient": 2,
    "TeleportTunnel": 3, "TeleportSSHClient": 3, "TeleportRecording": 3,
    "TeleportAuthServer": 4, "TeleportProxy": 4, "TeleportNode": 4, "TeleportDatabase": 4, "TeleportApp": 4, "TeleportKube": 4,
    "TeleportDaemon": 5, "TeleportClient": 5, "TeleportAdmin": 5,
    "teleport": 6, "tsh": 6, "tctl": 6, "tunnel-agents": 6,
}
SERVICES = {"TeleportAuthServer", "TeleportProxy", "TeleportNode", "TeleportDatabase", "TeleportApp", "TeleportKube"}
# The shared SSH modules sit below every service and every client library: the proxy, the reverse
# tunnel and future agents use them, so they must not pull in the node's session code, `tsh`'s CLI
# or any service (directly or through a dependency).
SHARED_SSH = {"TeleportSSH", "TeleportSSHClient"}
FORBIDDEN_FOR_SHARED_SSH = SERVICES | {"TeleportClient", "TeleportAdmin", "TeleportDaemon"}
# The node's session code (PTY, fork/exec, recording) lives in TeleportNode; clients never link it.
NODE_ONLY_TYPES = ("SessionProcess", "SessionChannelHandler", "SessionRecorder", "LiveSessions", "LoginUser")


def main() -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dump = json.loads(subprocess.check_output(["swift", "package", "dump-package"], cwd=root))
    deps = {}
    for target in dump["targets"]:
        names = []
        for dep in target.get("dependencies", []):
            for kind in ("byName", "target", "product"):
                if kind in dep:
                    names.append(dep[kind][0])
        deps[target["name"]] = names

    def closure(name, seen=None):
        seen = seen if seen is not None else set()
        for dep in deps.get(name, []):
            if dep not in seen:
                seen.add(dep)
                closure(dep, seen)
        return seen

    errors = []
    for client in ("tsh", "tctl"):
        bad = sorted(closure(client) & FORBIDDEN_FOR_CLIENTS)
        if bad:
            errors.append(f"{client} depends on {', '.join(bad)} (clients must not link servers, backends or the web framework)")

    for shared in sorted(SHARED_SSH):
        bad = sorted(closure(shared) & FORBIDDEN_FOR_SHARED_SSH)
        if bad:
            errors.append(f"{shared} depends on {', '.join(bad)} (the shared SSH modules must not link a service or a client CLI)")
    # The node's session code is found by what it declares, wherever a file is moved or renamed.
    node_only = re.compile(r"^\s*(?:public\s+|package\s+)?(?:final\s+)?(?:class|struct|enum)\s+(" + "|".join(NODE_ONLY_TYPES) + r")\b", re.M)
    client_closure = (closure("tsh") | closure("tctl") | SHARED_SSH | {"tsh", "tctl"}) - {"TeleportNode"}
    for target in sorted(client_closure):
        directory = os.path.join(root, "Sources", target)
        for dirpath, _, files in os.walk(directory):
            for file in sorted(f for f in files if f.endswith(".swift")):
                path = os.path.join(dirpath, file)
                for name in node_only.findall(open(path, encoding="utf-8").read()):
                    errors.append(
                        f"{os.path.relpath(path, root)}: declares {name}, node session code, in {target}, which tsh, tctl or the proxy link "
                        "(move it to TeleportNode)")

    import_re = re.compile(r"^\s*(?:@\w+\s+)*(?:public\s+|package\s+|internal\s+)?import\s+(\w+)", re.M)
    for target, layer in LAYERS.items():
        directory = os.path.join(root, "Sources", target)
        if not os.path.isdir(directory):
            continue
        for dirpath, _, files in os.walk(directory):
            for file in files:
                if not file.endswith(".swift"):
                    continue
                path = os.path.join(dirpath, file)
                for module in import_re.findall(open(path, encoding="utf-8").read()):
                    if module in LAYERS and LAYERS[module] > layer:
                        errors.append(f"{os.path.relpath(path, root)}: {target} (layer {layer}) imports {module} (layer {LAYERS[module]})")
                    if target in SHARED_SSH and module in FORBIDDEN_FOR_SHARED_SSH:
                        errors.append(f"{os.path.relpath(path, root)}: {target} imports {module} (shared SSH code must not import a service or a client CLI)")
                    if target in SERVICES and module in SERVICES and module != target:
                        errors.append(f"{os.path.relpath(path, root)}: service {target} imports service {module}")
    for error in errors:
        print(f"layering: {error}", file=sys.stderr)
    if errors:
        return 1
    print(
        "layering: ok (tsh and tctl link no server, backend, web framework or node session code; "
        "TeleportSSH and TeleportSSHClient import no service or client CLI; imports point down)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
