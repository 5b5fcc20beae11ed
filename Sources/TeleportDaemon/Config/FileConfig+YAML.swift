public import Foundation
public import TeleportAPI
import Yams

extension FileConfig {
    /// Reads and checks `teleport.yaml` at `path`.
    public static func load(path: String) throws -> FileConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            if FileManager.default.fileExists(atPath: path) {
                throw TeleportError.accessDenied("cannot read the configuration file \(path): permission denied")
            }
            throw TeleportError.notFound("the configuration file \(path) does not exist (create one with `teleport configure -o \(path)`)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TeleportError.badParameter("\(path): not UTF-8 text")
        }
        return try parse(text, file: path)
    }

    /// Parses `teleport.yaml` text; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws -> FileConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            let reason = YAMLErrorText.describe(error)
            if reason.contains("duplicated key(s)") {
                let where_ = duplicatedKeyPath(in: text) ?? "a key"
                throw TeleportError.badParameter("\(file): \(where_): the key appears twice; keep one")
            }
            throw TeleportError.badParameter("\(file): not valid YAML: \(reason)")
        }
        var config = FileConfig()
        guard let root else { return config }
        for (key, value) in try ConfigNode(node: root, path: "", file: file).mapping() {
            switch key {
            case "teleport": try config.parseGlobal(value)
            case "auth_service": try config.parseAuth(value)
            case "ssh_service": try config.parseSSH(value)
            case "proxy_service": try config.parseProxy(value)
            case "version":
                _ = try value.string()
            case "db_service": try config.parseDatabaseService(value)
            case "app_service": try config.parseAppService(value)
            case "kubernetes_service": try config.parseKubeService(value)
            case "windows_desktop_service", "discovery_service":
                try config.ignoreDisabledOrWarn(value, key)
            default: throw unknown(value, file: file)
            }
        }
        return config
    }

    /// The dotted path of the first key that appears twice in block-style YAML (Yams refuses
    /// duplicates before we see the tree, and names only the bare key).
    static func duplicatedKeyPath(in text: String) -> String? {
        var stack: [(indent: Int, key: String)] = []
        var seen = Set<String>()
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.drop { $0 == " " }
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#"), !trimmed.hasPrefix("-"), let colon = trimmed.firstIndex(of: ":")
            else { continue }
            let key = String(trimmed[..<colon]).trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            guard !key.isEmpty, !key.contains(" ") else { continue }
            let indent = line.count - trimmed.count
            while let last = stack.last, last.indent >= indent { stack.removeLast() }
            let path = (stack.map(\.key) + [key]).joined(separator: ".")
            if !seen.insert(path).inserted { return path }
            stack.append((indent, key))
        }
        return nil
    }

    static func unknown(_ node: ConfigNode, file: String) -> TeleportError {
        TeleportError.badParameter("\(file): \(node.path): unknown key (check the spelling against `teleport configure`)")
    }

    mutating func warn(_ node: ConfigNode, _ why: String) {
        warnings.append("\(node.file): \(node.path) is accepted but \(why)")
    }

    mutating func ignoreDisabledOrWarn(_ node: ConfigNode, _ key: String) throws {
        for (child, value) in try node.mapping() where child == "enabled" {
            if try !value.bool() { return }
        }
        warn(node, "not supported yet; the service is not started")
    }

    mutating func parseGlobal(_ node: ConfigNode) throws {
        for (key, value) in try node.mapping() {
            switch key {
            case "nodename": teleport.nodeName = try value.string()
            case "data_dir": teleport.dataDir = try value.string()
            case "pid_file": teleport.pidFile = try value.string()
            case "auth_token": teleport.authToken = try value.string()
            case "ca_pin": teleport.caPins = try value.stringList()
            case "auth_servers": teleport.authServers = try value.list().map { try $0.address(defaultPort: 3025) }
            case "auth_server": teleport.authServers = [try value.address(defaultPort: 3025)]
            case "proxy_server": teleport.proxyServer = try value.address(defaultPort: 3080)
            case "advertise_ip": teleport.advertiseIP = try value.string()
            case "diag_addr": teleport.diagAddr = try value.address(defaultPort: 3000)
            case "shutdown_delay": teleport.shutdownDelay = try value.duration(atLeast: 0)
            case "log": try parseLog(value)
            case "storage": try parseStorage(value)
            case "connection_limits": try parseConnectionLimits(value)
            case "cache": try parseCache(value)
            case "cipher_suites", "ciphers", "kex_algorithms", "mac_algorithms", "ca_signature_algo":
                warn(value, "the cryptographic suites are fixed (AES-GCM, curve25519, Ed25519)")
            default: throw Self.unknown(value, file: node.file)
            }
        }
    }

    mutating func parseLog(_ node: ConfigNode) throws {
        for (key, value) in try node.mapping() {
            switch key {
            case "output": teleport.log.output = try value.string()
            case "severity":
                let severity = try value.string().uppercased()
                guard ["DEBUG", "INFO", "WARN", "WARNING", "ERROR", "TRACE"].contains(severity) else {
                    throw value.fail("one of DEBUG, INFO, WARN, ERROR")
                }
                teleport.log.severity = severity
            case "format": warn(value, "logs are always text")
            default: throw Self.unknown(value, file: node.file)
            }
        }
    }

    mutating func parseStorage(_ node: ConfigNode) throws {
        for (key, value) in try node.mapping() {
            switch key {
            case "type":
                let type = try value.string().lowercased()
                switch type {
                case "sqlite", "dir": teleport.storage.type = .sqlite
                case "bolt":
                    teleport.storage.type = .sqlite
                    warn(value, "bolt is an older embedded backend; SQLite in data_dir is used instead")
                case "postgres", "postgresql": teleport.storage.type = .postgres
                case "etcd": teleport.storage.type = .etcd
                case "dynamodb", "firestore":
                    throw TeleportError.badParameter(
                        "\(node.file): \(value.path): the \(type) backend is not supported (use sqlite, or etcd or postgres for several auth servers)")
                default: throw value.fail("sqlite, etcd or postgres")
                }
            case "path": teleport.storage.path = try value.string()
            case "conn_string": teleport.storage.connString = try value.string()
            case "audit_events_uri": teleport.storage.auditEventsURIs = try value.stringList()
            case "audit_failure":
                let mode = try value.string()
                guard mode == "fail_closed" || mode == "continue" else { throw value.fail("fail_closed or continue") }
                teleport.storage.auditFailure = mode
            case "audit_sessions_uri": teleport.storage.auditSessionsURI = try value.string()
            case "peers": teleport.storage.peers = try value.stringList()
            case "prefix": teleport.storage.prefix = try value.string()
            case "tls_cert_file": teleport.storage.tlsCertFile = try value.string()
            case "tls_key_file": teleport.storage.tlsKeyFile = try value.string()
            case "tls_ca_file": teleport.storage.tlsCAFile = try value.string()
            case "username": teleport.storage.username = try value.string()
            case "password_file": teleport.storage.passwordFile = try value.string()
            case "insecure": teleport.storage.insecure = try value.bool()
            case "etcd_max_client_msg_size_bytes": teleport.storage.etcdMaxClientMsgSizeBytes = try value.int()
            case "region": teleport.storage.region = try value.string()
            case "table_name", "project_id", "collection_name",
                "credentials_path", "poll_stream_period":
                warn(value, "it belongs to a backend that is not supported")
            default: throw Self.unknown(value, file: node.file)
            }
        }
    }

    mutating func parseAuth(_ node: ConfigNode) throws {
        for (key, value) in try node.mapping() {
            switch key {
            case "enabled": auth.enabled = try value.bool()
            case "cluster_name": auth.clusterName = try value.string()
            case "listen_addr": auth.listenAddr = try value.address(defaultPort: 3025)
            case "public_addr": auth.publicAddrs = try value.stringList()
            case "tokens": auth.tokens = try value.stringList()
            case "authentication":
                for (option, optionValue) in try value.mapping() {
                    switch option {
                    case "type":
                        let type = try optionValue.string()
                        guard ["local", "github", "oidc"].contains(type) else {
                            if type == "saml" {
                                throw TeleportError.badParameter(
                                    "\(node.file): \(optionValue.path): type saml is not supported; use local, github or oidc")
                            }
                            throw optionValue.fail("local, github or oidc")
                        }
                        auth.authenticationType = type
                    case "connector_name":
                        let name = try optionValue.string()
                        do {
                            try ResourceName.validate(name, kind: "connector")
                        } catch {
                            throw optionValue.fail("a connector's name (tctl get connectors)")
                        }
                        auth.connectorName = name
                    case "local_auth":
                        auth.localAuth = try optionValue.bool()
                    case "second_factor":
                        let factor = try optionValue.string().lowercased()
                        switch factor {
                        case "off", "otp": auth.secondFactor = factor
                        case "on": auth.secondFactor = "otp"  // "a second factor is required": OTP is the one there is
                        case "u2f", "webauthn", "optional":
                            throw TeleportError.badParameter(
                                "\(node.file): \(optionValue.path): second_factor \"\(factor)\" is not supported yet (hardware keys and optional second factors are not available); use otp or off")
                        default: throw optionValue.fail("otp or off")
                        }
                    case "u2f", "webauthn", "device_trust":
                        warn(optionValue, "hardware keys are not supported yet")
                    default: throw Self.unknown(optionValue, file: node.file)
                    }
                }
            case "web_idle_timeout":
                let seconds = try value.duration()
                guard seconds >= 1 else { throw value.fail("a duration of at least 1s such as 10m") }
                auth.webIdleTimeout = seconds
            case "license_file": warn(value, "there is no license to load")
            case "dynamic_config": warn(value, "dynamic configuration is always on")
            case "session_recording":
                let mode = try value.string().lowercased()
                switch mode {
                case "node", "off": auth.sessionRecording = mode
                case "proxy", "node-sync", "proxy-sync":
                    warn(value, "only node and off are supported; sessions are recorded at the node")
                    auth.sessionRecording = "node"
                default: throw value.fail("node or off")
                }
            case "proxy_checks_host_keys", "client_idle_timeout", "disconnect_expired_cert",
                "keep_alive_interval", "keep_alive_count_max", "message_of_the_day", "trusted_clusters", "oidc_connectors",
                "routing_strategy", "tunnel_strategy":
                warn(value, "the setting is not supported yet")
            default: throw Self.unknown(value, file: node.file)
            }
        }
    }

    mutating func parseSSH(_ node: ConfigNode) throws {
        for (key, value) in try node.mapping() {
            switch key {
            case "enabled": ssh.enabled = try value.bool()
            case "listen_addr":
                ssh.listenAddr = try value.address(defaultPort: 3022)
                ssh.listenAddrConfigured = true
            case "public_addr": ssh.publicAddrs = try value.stringList()
            case "labels":
                for (label, labelValue) in try value.mapping() {
                    let text = try labelValue.string()
                    try LabelRules.check(key: label, source: "\(node.file): \(labelValue.path)")
                    try LabelRules.check(value: text, key: label, source: "\(node.file): \(labelValue.path)")
                    ssh.labels[label] = text
                }
            case "commands":
                ssh.commands = try Self.labelCommands(value, file: node.file)
            case "pam", "enhanced_recording", "permit_user_env", "x11", "bpf", "restricted_session", "ciphers",
                "kex_algorithms", "mac_algorithms", "disable_create_host_user":
                warn(value, "the setting is not supported yet")
            default: throw Self.unknown(value, file: node.file)
            }
        }
    }

    mutating func parseProxy(_ node: ConfigNode) throws {
        var keyFile: String?
        var certFile: String?
        for (key, value) in try node.mapping() {
            switch key {
            case "enabled": proxy.enabled = try value.bool()
            case "listen_addr": proxy.listenAddr = try value.address(defaultPort: 3023)
            case "web_listen_addr": proxy.webListenAddr = try value.address(defaultPort: 3080)
            case "tunnel_listen_addr": proxy.tunnelListenAddr = try value.address(defaultPort: 3024)
            case "proxy_listener_mode":
                let text = try value.string()
                guard let mode = ProxyService.ListenerMode(rawValue: text) else {
                    throw TeleportError.badParameter(
                        "\(node.file): \(value.path): \"\(text)\" is not a listener mode (use multiplex or separate)")
                }
                proxy.listenerMode = mode
            case "public_addr": proxy.publicAddrs = try value.stringList()
            case "tunnel_public_addr": proxy.tunnelPublicAddr = try value.address(defaultPort: 3024)
            case "postgres_listen_addr": proxy.postgresListenAddr = try value.address(defaultPort: 5432)
            case "mysql_listen_addr": proxy.mysqlListenAddr = try value.address(defaultPort: 3036)
            case "kube_listen_addr": proxy.kubeListenAddr = try value.address(defaultPort: 3026)
            case "ssh_public_addr", "kube_public_addr", "postgres_public_addr", "mysql_public_addr",
                "acme", "trust_x_forwarded_for":
                warn(value, "the setting is not supported yet")
            case "kubernetes": try parseProxyKubernetes(value, file: node.file)
            case "https_keypairs":
                proxy.httpsKeyPairs = try value.list().map { item in
                    var pairKey: String?
                    var pairCert: String?
                    for (field, fieldValue) in try item.mapping() {
                        switch field {
                        case "key_file": pairKey = try fieldValue.string()
                        case "cert_file": pairCert = try fieldValue.string()
                        default: throw Self.unknown(fieldValue, file: node.file)
                        }
                    }
                    guard let pairKey, let pairCert else { throw item.fail("key_file and cert_file") }
                    return KeyPair(keyFile: pairKey, certFile: pairCert)
                }
            case "https_key_file": keyFile = try value.string()
            case "https_cert_file": certFile = try value.string()
            default: throw Self.unknown(value, file: node.file)
            }
        }
        if let keyFile, let certFile { proxy.httpsKeyPairs.append(KeyPair(keyFile: keyFile, certFile: certFile)) }
    }
}

extension FileConfig {
    /// A list of label commands (`ssh_service.commands`, `db_service.databases[].dynamic_labels`):
    /// `[{name, command: [argv], period}]`, each program runnable, each name a valid label key.
    static func labelCommands(_ value: ConfigNode, file: String) throws -> [LabelCommand] {
        try value.list().map { item in
            var name: String?
            var command: [String] = []
            var period = 60.0
            for (field, fieldValue) in try item.mapping() {
                switch field {
                case "name": name = try fieldValue.string()
                case "command":
                    command = try fieldValue.stringList()
                    if let program = command.first, !LabelCommandCheck.isRunnable(program) {
                        throw TeleportError.badParameter(
                            "\(file): \(fieldValue.path): \"\(program)\" is not an executable file or a program on PATH (give its full path, e.g. /usr/bin/uptime)")
                    }
                case "period": period = try fieldValue.duration(atLeast: 1)
                default: throw Self.unknown(fieldValue, file: file)
                }
            }
            guard let name, !name.isEmpty else { throw item.fail("a command with a name") }
            try LabelRules.check(key: name, source: "\(file): \(item.path).name")
            guard !command.isEmpty else { throw item.fail("a command with a non-empty command list") }
            return LabelCommand(name: name, command: command, period: period)
        }
    }
}
