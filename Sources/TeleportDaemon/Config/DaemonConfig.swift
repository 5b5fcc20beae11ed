public import Foundation
public import TeleportAPI

/// The configuration the daemon runs with: `teleport.yaml` (if any), then flags, then defaults.
public struct DaemonConfig: Sendable {
    /// The file settings (defaults when there is no file).
    public var file: FileConfig
    /// Where the file came from, for messages.
    public var configPath: String?
    /// The data directory.
    public var dataDir: URL
    /// This host's name.
    public var nodeName: String
    /// Services to run.
    public var runAuth: Bool
    public var runProxy: Bool
    public var runNode: Bool
    /// The database service (`db_service.enabled` or `--roles=db`).
    public var runDb = false
    /// The application service (`app_service.enabled` or `--roles=app`).
    public var runApp = false
    /// Whether the Kubernetes service runs (`kubernetes_service.enabled` or `--roles=kube`).
    public var runKube = false
    /// Debug logging.
    public var debug: Bool
    public var diagAddr: String?
    public var pidFile: String?
    public var bootstrapPath: String?
    public var authServers: [String]
    public var token: String?
    public var caPins: [String]
    public var advertiseIP: String?
    /// The reverse tunnel agent's keepalive interval, from ``tunnelKeepaliveVariable`` (tests
    /// only); nil keeps the default (30 s).
    public var tunnelKeepalive: Duration? = nil
    /// How often agents look at the CAs (a rotation: new trust, renewed identities) and the auth
    /// service moves automatic rotations.
    public var rotationCheckInterval: Duration = .seconds(2)

    /// `TELEPORT_UNSTABLE_TUNNEL_KEEPALIVE=SECONDS`: the interval at which a tunnelled node's agent
    /// sends keepalives (a proxy silent for three intervals is dropped and redialled). For tests
    /// that stop a proxy and must not wait 90 s; unstable, not a production setting. Read once, at
    /// start.
    public static let tunnelKeepaliveVariable = "TELEPORT_UNSTABLE_TUNNEL_KEEPALIVE"

    /// Parses ``tunnelKeepaliveVariable`` from `environment`: whole seconds from 1 to 3600.
    package static func tunnelKeepalive(environment: [String: String]) throws -> Duration? {
        guard let text = environment[tunnelKeepaliveVariable], !text.isEmpty else { return nil }
        guard let seconds = Int(text), (1...3600).contains(seconds) else {
            throw TeleportError.badParameter(
                "\(tunnelKeepaliveVariable): \"\(text)\" is not a whole number of seconds from 1 to 3600 (a setting for tests; unset it)")
        }
        return .seconds(seconds)
    }

    /// The default data directory: `/var/lib/teleport` for root, else `~/.local/share/teleport`.
    public static func defaultDataDir() -> URL {
        if geteuid() == 0 { return URL(fileURLWithPath: "/var/lib/teleport") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".local/share/teleport")
    }

    /// The default config path, used only when it exists.
    public static let defaultConfigPath = "/etc/teleport.yaml"

    /// Resolves the configuration for `teleport start`.
    public static func resolve(flags: StartFlags) throws -> DaemonConfig {
        var file = FileConfig()
        var configPath: String?
        if let path = flags.configPath {
            file = try FileConfig.load(path: path)
            configPath = path
        } else if FileManager.default.fileExists(atPath: defaultConfigPath) {
            file = try FileConfig.load(path: defaultConfigPath)
            configPath = defaultConfigPath
        }
        var runAuth = file.auth.enabled
        var runProxy = file.proxy.enabled
        var runNode = file.ssh.enabled
        var runDb = file.db.enabled
        var runApp = file.app.enabled
        var runKube = file.kube.enabled
        if let roles = flags.roles {
            let names = roles.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            for name in names where !["auth", "proxy", "node", "db", "app", "kube"].contains(name) {
                throw TeleportError.badParameter("--roles: unknown role \"\(name)\" (expected a list of auth, node, proxy, db, app, kube)")
            }
            guard !names.isEmpty else { throw TeleportError.badParameter("--roles: the list is empty") }
            runAuth = names.contains("auth")
            runProxy = names.contains("proxy")
            runNode = names.contains("node")
            runDb = names.contains("db")
            runApp = names.contains("app")
            runKube = names.contains("kube")
        }
        // The seed's proxy_service.kubernetes.kubeconfig_file: the proxy's process serves those
        // clusters itself, on a loopback port the proxy finds in the kube_server record.
        if runProxy, let kubeconfig = file.proxy.kubernetesKubeconfigFile, !file.kube.enabled {
            runKube = true
            file.kube.kubeconfigFile = kubeconfig
            file.kube.listenAddr = "127.0.0.1:0"
            file.kube.listenAddrConfigured = true
        }
        if runKube, file.kube.kubeconfigFile == nil {
            throw TeleportError.badParameter(
                "kubernetes_service: kubeconfig_file is missing; name the kubeconfig whose contexts the service serves")
        }
        if runApp, file.app.apps.isEmpty {
            throw TeleportError.badParameter(
                "app_service: no apps to serve: list them under app_service.apps (name: grafana, uri: http://localhost:3000)")
        }
        if let database = flags.database {
            // `teleport db start`: the database service alone, serving the flags' database too.
            try file.addDatabase(database)
            (runAuth, runProxy, runNode, runDb) = (false, false, false, true)
        }
        if runDb, file.db.databases.isEmpty {
            throw TeleportError.badParameter(
                "db_service: no databases to serve: list them under db_service.databases (name, protocol: postgres, uri: host:port)")
        }
        guard runAuth || runProxy || runNode || runDb || runApp || runKube else {
            throw TeleportError.badParameter("no service is enabled: enable auth_service, proxy_service or ssh_service (or pass --roles)")
        }
        if let listenIP = flags.listenIP {
            guard !listenIP.isEmpty, !listenIP.contains(where: { $0 == "/" || $0.isWhitespace }), ListenHost.isListenable(listenIP) else {
                throw TeleportError.badParameter("--listen-ip: \"\(listenIP)\" is not an IP address")
            }
            func rebind(_ address: String) -> String {
                let port = address.split(separator: ":").last.map(String.init) ?? ""
                return listenIP.contains(":") ? "[\(listenIP)]:\(port)" : "\(listenIP):\(port)"
            }
            file.auth.listenAddr = rebind(file.auth.listenAddr)
            file.ssh.listenAddr = rebind(file.ssh.listenAddr)
            file.proxy.listenAddr = rebind(file.proxy.listenAddr)
            file.proxy.webListenAddr = rebind(file.proxy.webListenAddr)
            file.proxy.tunnelListenAddr = rebind(file.proxy.tunnelListenAddr)
        }
        if let labels = flags.labels {
            let parsed = try LabelFlag.parse(labels)
            file.ssh.labels.merge(parsed.static) { _, new in new }
            file.ssh.commands += parsed.commands
        }
        var dataDir: URL
        if let flagDir = flags.dataDir {
            dataDir = URL(fileURLWithPath: flagDir)
        } else if let fileDir = file.teleport.dataDir {
            // A relative data_dir is relative to the working directory, as in the seed's `data_dir: fresh`.
            dataDir = URL(fileURLWithPath: fileDir)
        } else {
            dataDir = defaultDataDir()
        }
        dataDir = dataDir.standardizedFileURL
        let hostName = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        var authServers = file.teleport.authServers
        // `teleport.proxy_server: HOST:3080`: the agent reaches auth through the proxy's web port.
        if authServers.isEmpty, let proxyServer = file.teleport.proxyServer { authServers = [proxyServer] }
        if let server = flags.authServer {
            authServers = try server.split(separator: ",").map {
                let parsed = try HostPort.parse(String($0), defaultPort: 3025, key: "--auth-server")
                return HostPort.join(parsed.host, parsed.port)
            }
        }
        if let diag = flags.diagAddr {
            let parsed = try HostPort.parse(diag, defaultPort: 3000, key: "--diag-addr")
            guard ListenHost.isListenable(parsed.host) else {
                throw TeleportError.badParameter(
                    "--diag-addr: \"\(diag)\" is not an address to listen on (the host must be an IP address or a name this host resolves, e.g. 127.0.0.1:3000)")
            }
            file.teleport.diagAddr = HostPort.join(parsed.host, parsed.port)
        }
        // Settings that would fail only after the data directory was created are checked now.
        try file.checkListenAddresses(source: configPath ?? "teleport.yaml")
        try file.checkAppTargets(source: configPath ?? "teleport.yaml")
        try file.checkFilesAndURIs(source: configPath ?? "teleport.yaml", runAuth: runAuth, runProxy: runProxy)
        if runAuth, file.teleport.storage.type == .postgres {
            try file.checkPostgresStorage(source: configPath ?? "teleport.yaml")
        }
        if runAuth, file.teleport.storage.type == .etcd {
            try file.checkEtcdStorage(source: configPath ?? "teleport.yaml")
        }
        if let bootstrap = flags.bootstrap, !FileManager.default.isReadableFile(atPath: bootstrap) {
            throw TeleportError.notFound("--bootstrap: cannot read \(bootstrap)")
        }
        var config = DaemonConfig(
            file: file, configPath: configPath, dataDir: dataDir, nodeName: flags.nodeName ?? file.teleport.nodeName ?? hostName,
            runAuth: runAuth, runProxy: runProxy, runNode: runNode, debug: flags.debug,
            diagAddr: file.teleport.diagAddr, pidFile: flags.pidFile ?? file.teleport.pidFile, bootstrapPath: flags.bootstrap,
            authServers: authServers, token: flags.token ?? file.teleport.authToken,
            caPins: flags.caPin.map { [$0] } ?? file.teleport.caPins, advertiseIP: flags.advertiseIP ?? file.teleport.advertiseIP)
        config.runDb = runDb
        config.runApp = runApp
        config.runKube = runKube
        config.tunnelKeepalive = try tunnelKeepalive(environment: ProcessInfo.processInfo.environment)
        return config
    }

    /// The roles as the log and `teleport status` print them.
    public var roleNames: [String] {
        (runAuth ? ["auth"] : []) + (runProxy ? ["proxy"] : []) + (runNode ? ["node"] : []) + (runDb ? ["db"] : []) + (runApp ? ["app"] : [])
            + (runKube ? ["kube"] : [])
    }
}

/// The `--labels` flag: `k=v,k2=v2` and dynamic `name=[1m:"uptime -p"]`.
public enum LabelFlag {
    /// Parses the flag into static labels and commands.
    public static func parse(_ text: String) throws -> (static: [String: String], commands: [FileConfig.LabelCommand]) {
        var labels: [String: String] = [:]
        var commands: [FileConfig.LabelCommand] = []
        for part in splitTopLevel(text) where !part.isEmpty {
            guard let equals = part.firstIndex(of: "=") else {
                throw TeleportError.badParameter("--labels: \"\(part)\" is not key=value")
            }
            let key = String(part[..<equals]).trimmingCharacters(in: .whitespaces)
            let value = String(part[part.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { throw TeleportError.badParameter("--labels: \"\(part)\" has an empty key") }
            try LabelRules.check(key: key, source: "--labels")
            if value.hasPrefix("[") {
                guard value.hasSuffix("]"), let colon = value.firstIndex(of: ":") else {
                    throw TeleportError.badParameter("--labels: \(key): expected [period:\"command\"], e.g. [1m:\"uptime -p\"]")
                }
                let periodText = String(value[value.index(after: value.startIndex)..<colon])
                guard let period = GoDuration.parse(periodText), period >= 1 else {
                    throw TeleportError.badParameter("--labels: \(key): \"\(periodText)\" is not a duration of at least 1s such as 1m or 1h")
                }
                var command = String(value[value.index(after: colon)..<value.index(before: value.endIndex)])
                command = command.trimmingCharacters(in: CharacterSet(charactersIn: "\"' "))
                let argv = command.split(separator: " ").map(String.init)
                guard let program = argv.first else { throw TeleportError.badParameter("--labels: \(key): the command is empty") }
                guard LabelCommandCheck.isRunnable(program) else {
                    throw TeleportError.badParameter(
                        "--labels: \(key): \"\(program)\" is not an executable file or a program on PATH (give its full path, e.g. /usr/bin/uptime)")
                }
                commands.append(.init(name: key, command: argv, period: period))
            } else {
                try LabelRules.check(value: value, key: key, source: "--labels")
                labels[key] = value
            }
        }
        return (labels, commands)
    }

    /// Splits on commas that are not inside `[...]`.
    static func splitTopLevel(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            if character == "[" { depth += 1 }
            if character == "]" { depth -= 1 }
            if character == ",", depth == 0 {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        return parts
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
