public import Foundation
public import TeleportAPI
import TeleportAuthClient
import TeleportCrypto

/// The work behind each `tctl` command; returns the text to print.
public enum AdminCommands {
    /// `tctl status`.
    public static func status(_ options: AdminConnection.Options) async throws -> String {
        let status = try await AdminConnection.client(options).status()
        var rows: [[String]] = [["Cluster", status.clusterName], ["Version", status.serverVersion]]
        for ca in status.certAuthorities.sorted(by: { $0.type < $1.type }) {
            let updated = ca.lastRotated.map { "last rotated \(RFC3339.format($0))" } ?? "never updated"
            // The database CA has no SSH key: it is X.509 only.
            let fingerprints =
                ca.type == CertAuthority.CAType.jwt.rawValue
                ? "JWT signing key only" : ca.sshFingerprints.isEmpty ? "X.509 only" : ca.sshFingerprints.joined(separator: ",")
            let name = ca.type == CertAuthority.CAType.db.rawValue ? "DB" : ca.type == CertAuthority.CAType.jwt.rawValue ? "JWT" : ca.type.capitalized
            var rotation = "rotation \(ca.rotationState)"
            if let phase = ca.rotationPhase, phase != CARotation.Phase.standby.rawValue {
                rotation = "rotation in progress (phase \(phase), mode \(ca.rotationMode ?? "manual")"
                    + (ca.gracePeriodEnds.map { ", grace period ends \(RFC3339.format($0))" } ?? "") + ")"
            }
            rows.append(["\(name) CA", "\(updated), \(rotation), \(fingerprints)"])
        }
        rows.append(["CA pin", status.caPin])
        return TextTable.plain(rows)
    }

    /// `tctl auth rotate [--type=user|host|db|jwt] [--grace-period=48h]` (automatic; without a
    /// type the host and user CAs) and `tctl auth rotate --manual --type=T --phase=P`.
    public static func rotate(
        _ options: AdminConnection.Options, type: String?, gracePeriod: String?, manual: Bool, phase: String?
    ) async throws -> String {
        var seconds: Double?
        if let gracePeriod {
            guard let parsed = GoDuration.parse(gracePeriod), parsed > 0 else {
                throw TeleportError.badParameter("--grace-period=\(gracePeriod) is not a positive duration (e.g. 48h, 8h, 30s)")
            }
            seconds = parsed
        }
        let types: [String]
        if manual {
            guard let type else { throw TeleportError.badParameter("--manual needs --type=user|host|db|jwt") }
            guard phase != nil else {
                throw TeleportError.badParameter("--manual needs --phase=init|update_clients|update_servers|standby|rollback")
            }
            types = [type]
        } else {
            guard phase == nil else { throw TeleportError.badParameter("--phase needs --manual (an automatic rotation moves through every phase)") }
            types = type.map { [$0] } ?? [CertAuthority.CAType.host.rawValue, CertAuthority.CAType.user.rawValue]
        }
        let client = try AdminConnection.client(options)
        var lines: [String] = []
        for type in types {
            let answer = try await client.rotate(
                AuthAPI.RotateRequest(type: type, mode: manual ? "manual" : "auto", phase: phase, gracePeriodSeconds: seconds))
            var line = "Updated rotation phase of the \(answer.type) CA to \"\(answer.phase)\" (was \"\(answer.from)\")"
            if let ends = answer.gracePeriodEnds, answer.mode == "auto" { line += "; automatic, grace period ends \(RFC3339.format(ends))" }
            lines.append(line + ".")
            let phaseNow = CARotation.Phase(rawValue: answer.phase)
            if type == CertAuthority.CAType.host.rawValue, [.initialized, .standby].contains(phaseNow) {
                lines.append("OpenSSH clients: re-export the host CA for known_hosts (tctl auth export --type=host prints the keys trusted now).")
            }
            if type == CertAuthority.CAType.host.rawValue, [.initialized, .updateServers].contains(phaseNow) {
                lines.append("OpenSSH nodes: sign their host keys again once the rotation reaches update_servers (tctl auth sign --host=...).")
            }
            if type == CertAuthority.CAType.user.rawValue, [.initialized, .standby].contains(phaseNow) {
                lines.append("OpenSSH nodes: re-export the user CA for TrustedUserCAKeys (tctl auth export --type=user prints the keys trusted now).")
            }
        }
        if !manual { lines.append("Follow the rotation with tctl status.") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The forms of `tctl auth export --type`.
    public enum ExportType: String, CaseIterable, Sendable {
        case user, host, tls, tlsHost = "tls-host", tlsUser = "tls-user", db
    }

    /// `tctl auth export [--type]`.
    public static func export(_ options: AdminConnection.Options, type: ExportType?) async throws -> String {
        let client = try AdminConnection.client(options)
        let clusterName = try await client.ping().clusterName
        func ca(_ type: CertAuthority.CAType) async throws -> CertAuthority {
            guard case .certAuthority(let ca) = try await client.resource(kind: CertAuthority.kind, name: type.rawValue) else {
                throw TeleportError.internalError("the auth service sent another kind for cert_authority/\(type.rawValue)")
            }
            return ca
        }
        func sshKeys(_ ca: CertAuthority) throws -> [SSHPublicKey] {
            try ca.trustedKeys.ssh.map { try SSHPublicKey(authorizedKeyLine: $0.publicKey) }
        }
        func userLines(prefix: String) async throws -> [String] {
            try sshKeys(try await ca(.user)).map {
                prefix + $0.authorizedKeyLine(comment: "clustername=\(clusterName)&type=user")
            }
        }
        func hostLines() async throws -> [String] {
            try sshKeys(try await ca(.host)).map {
                "@cert-authority *.\(clusterName),\(clusterName) " + $0.authorizedKeyLine(comment: "type=host")
            }
        }
        switch type {
        case .none:
            return (try await hostLines() + (try await userLines(prefix: "cert-authority "))).joined(separator: "\n") + "\n"
        case .user?:
            return try await userLines(prefix: "").joined(separator: "\n") + "\n"
        case .host?:
            return try await hostLines().joined(separator: "\n") + "\n"
        case .tls?, .tlsHost?:
            return try await ca(.host).trustedKeys.tls.map(\.cert).joined()
        case .tlsUser?:
            return try await ca(.user).trustedKeys.tls.map(\.cert).joined()
        case .db?:
            return try await ca(.db).trustedKeys.tls.map(\.cert).joined()
        }
    }

    /// Output formats of `tctl get`.
    public enum Format: String, CaseIterable, Sendable {
        case yaml, json, text
    }

    /// `tctl get KIND[/NAME]` and `tctl get all`.
    public static func get(_ options: AdminConnection.Options, reference: String, format: Format, withSecrets: Bool) async throws -> String {
        let client = try AdminConnection.client(options)
        var resources: [AnyResource] = []
        if reference == "all" {
            for kind in ResourceKinds.all.filter(\.inBackup).map(\.name) {
                // `get all` is a backup: it carries CA keys (and connector secrets) so that
                // `--bootstrap` can restore them.
                let secret = kind == CertAuthority.kind || ResourceKinds.connectorKinds.contains(kind)
                resources += try await client.resources(kind: kind, withSecrets: secret || withSecrets)
            }
        } else if ["connectors", "connector"].contains(reference.lowercased()) {
            // Every single sign-on connector, of both kinds.
            for kind in ResourceKinds.connectorKinds {
                resources += try await client.resources(kind: kind, withSecrets: withSecrets)
            }
        } else {
            let (kind, name) = try parseReference(reference)
            if let name {
                resources = [try await client.resource(kind: kind, name: name, withSecrets: withSecrets)]
            } else {
                resources = try await client.resources(kind: kind, withSecrets: withSecrets)
            }
        }
        switch format {
        case .yaml: return try ResourceCodec.yaml(resources.map(\.value))
        case .json:
            let trees = try resources.map { try JSONSerialization.jsonObject(with: ResourceCodec.json($0.value)) }
            let data = try JSONSerialization.data(withJSONObject: trees, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            return String(decoding: data, as: UTF8.self) + "\n"
        case .text: return ResourceTables.render(resources)
        }
    }

    /// Splits `kind[/name]`, accepting plural and alias kind names.
    public static func parseReference(_ reference: String) throws -> (kind: String, name: String?) {
        let parts = reference.split(separator: "/", maxSplits: 1).map(String.init)
        guard let first = parts.first, let kind = AnyResource.canonicalKind(first) else {
            throw TeleportError.badParameter(
                "unknown resource kind \"\(parts.first ?? reference)\" (known: \(AnyResource.kinds.joined(separator: ", ")), connectors, all)")
        }
        if parts.count == 2 {
            guard !parts[1].isEmpty else { throw TeleportError.badParameter("\"\(reference)\": the name after / is empty") }
            return (kind, parts[1])
        }
        return (kind, nil)
    }

    /// `tctl create [-f] FILE`: all or nothing. Every document is checked here before any is
    /// sent, then the auth service checks them together (users' roles exist, nothing exists yet
    /// without `-f`) and writes them in one transaction.
    public static func create(_ options: AdminConnection.Options, path: String, force: Bool) async throws -> String {
        let source = path == "-" ? "standard input" : path
        let text = try readResourceFile(path)
        let resources = try ResourceCodec.decodeDocuments(text, source: source)
        let results = try await AdminConnection.client(options).applyResources(resources, upsert: force)
        return results.map { "\($0.kind) \"\($0.name)\" has been \($0.created ? "created" : "updated")" }.joined(separator: "\n") + "\n"
    }

    /// The text of a resource file (`-`: standard input), refused by its size before it is parsed:
    /// at most ``ResourceCodec/maxDocumentBytes`` bytes of UTF-8.
    static func readResourceFile(_ path: String) throws -> String {
        let limit = ResourceCodec.maxDocumentBytes
        let source = path == "-" ? "standard input" : path
        let tooLarge = TeleportError.limitExceeded(
            "\(source) is larger than \(limit) bytes, the limit for a resource file; split it into smaller files")
        let handle: FileHandle
        if path == "-" {
            handle = FileHandle.standardInput
        } else {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                let opened = FileHandle(forReadingAtPath: path)
            else {
                throw TeleportError.notFound("cannot read \(path)")
            }
            if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > limit { throw tooLarge }
            handle = opened
        }
        // Read one byte more than allowed: pipes and files that grew have no trustworthy size.
        let data = (try? handle.read(upToCount: limit + 1)) ?? Data()
        if path != "-" { try? handle.close() }
        guard data.count <= limit else { throw tooLarge }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TeleportError.badParameter("\(source) is not UTF-8 text")
        }
        return text
    }

    /// `tctl lock --user=NAME|--login=LOGIN|--node=NODE [--message=TEXT] [--ttl=DURATION]`.
    public static func lock(
        _ options: AdminConnection.Options, target: Lock.Target, message: String?, ttl: String?, clock: any WallClock = SystemClock()
    ) async throws -> String {
        var expires: Date?
        if let ttl {
            guard let seconds = GoDuration.parse(ttl), seconds > 0 else {
                throw TeleportError.badParameter("--ttl=\(ttl) is not a duration such as 10h")
            }
            expires = clock.now().addingTimeInterval(seconds)
        }
        let lock = Lock(name: UUID().uuidString.lowercased(), target: target, message: message, expires: expires)
        try lock.validate()
        try await AdminConnection.client(options).create(.lock(lock), upsert: false)
        return "Created a lock with name \"\(lock.name)\".\n"
    }

    /// `tctl rm KIND/NAME`.
    public static func remove(_ options: AdminConnection.Options, reference: String) async throws -> String {
        let (kind, name) = try parseReference(reference)
        guard let name else {
            throw TeleportError.badParameter("tctl rm needs KIND/NAME, e.g. tctl rm user/joe")
        }
        try await AdminConnection.client(options).delete(kind: kind, name: name)
        return "\(kind) \"\(name)\" has been deleted\n"
    }
}

/// `tctl nodes` and `tctl tokens`.
public enum NodeCommands {
    /// `tctl nodes add`: creates a token and prints the command that joins a new host.
    public static func add(
        _ options: AdminConnection.Options, roles: String, ttl: String, token: String?
    ) async throws -> String {
        let parsedRoles = try parseRoles(roles)
        if let token { try TokenValue.check(token, source: "--token") }
        guard let seconds = GoDuration.parse(ttl) else {
            throw TeleportError.badParameter("--ttl=\(ttl) is not a duration such as 30m or 1h")
        }
        let client = try AdminConnection.client(options)
        let created = try await client.createToken(.init(token: token, roles: parsedRoles, ttlSeconds: seconds))
        let pin = try await client.status().caPin
        let roleList = parsedRoles.map { $0.rawValue.lowercased() }.joined(separator: ",")
        let lifetime = GoDuration.format(seconds: seconds)
        let local = options.identityFile == nil ? try? LocalSettings.read(configPath: options.configPath) : nil
        let join = JoinAddress.choose(
            connected: client.address, explicit: options.authServer != nil, publicAddrs: local?.publicAddrs ?? [],
            advertiseIP: local?.advertiseIP, listensEverywhere: local?.listensEverywhere ?? false, hostAddresses: JoinAddress.hostAddresses)
        // Every word of the command line is shell-quoted: it is meant to be pasted into a shell.
        let address = TerminalText.escape(join.address)
        return """
            The invite token: \(TerminalText.escape(created.token))
            This token will expire in \(lifetime).

            Run this on the new node to join the cluster:

            > teleport start \\
               \(ShellQuote.flag("roles", roleList)) \\
               \(ShellQuote.flag("token", created.token)) \\
               \(ShellQuote.flag("ca-pin", pin)) \\
               \(ShellQuote.flag("auth-server", join.address))

            Please note:

              - This invitation token will expire in \(lifetime)
              - \(address) (\(join.source)) must be reachable from the new node

            """
    }

    /// `tctl tokens add --type=...`.
    public static func addToken(_ options: AdminConnection.Options, type: String, ttl: String, value: String?) async throws -> String {
        if let trust = try await TrustCommands.addTokenIfTrust(options, type: type, ttl: ttl, value: value) { return trust }
        let roles = try parseRoles(type)
        if let value { try TokenValue.check(value, source: "--value") }
        guard let seconds = GoDuration.parse(ttl) else {
            throw TeleportError.badParameter("--ttl=\(ttl) is not a duration such as 30m or 1h")
        }
        let created = try await AdminConnection.client(options).createToken(.init(token: value, roles: roles, ttlSeconds: seconds))
        return "The \(roles.map { $0.rawValue.lowercased() }.joined(separator: ",")) token: \(TerminalText.escape(created.token))\n"
            + "This token will expire in \(GoDuration.format(seconds: seconds)).\n"
    }

    /// `tctl tokens ls`.
    public static func listTokens(_ options: AdminConnection.Options) async throws -> String {
        let tokens = try await AdminConnection.client(options).tokens()
        let rows = tokens.map { token in
            [token.token, token.roles.map(\.rawValue).joined(separator: ","), token.expires.map(RFC3339.format) ?? "never"]
        }
        return TextTable.render(headers: ["Token", "Type", "Expiry Time"], rows: rows)
    }

    /// `tctl tokens rm TOKEN`.
    public static func removeToken(_ options: AdminConnection.Options, token: String) async throws -> String {
        try await AdminConnection.client(options).deleteToken(token)
        return "Token \(TokenText.mask(token)) has been deleted\n"
    }

    /// `tctl nodes ls`.
    public static func list(_ options: AdminConnection.Options, format: AdminCommands.Format, verbose: Bool) async throws -> String {
        let nodes = try await AdminConnection.client(options).nodes()
        switch format {
        case .yaml: return try render(nodes.map { AnyResource.node($0) }, format: format)
        case .json:
            // Encoded in one pass (not re-read as a tree and written again: 10,000 nodes).
            return String(decoding: try ResourceCodec.jsonEncoder(pretty: true).encode(nodes), as: UTF8.self) + "\n"
        case .text:
            let rows: [[String]] = nodes.map { node in
                let labels = node.allLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                return [node.spec.hostname, node.name, node.displayAddress, verbose ? labels : String(labels.prefix(60))]
            }.sorted { $0[0] < $1[0] }
            return TextTable.render(headers: ["Node Name", "Node ID", "Address", "Labels"], rows: rows)
        }
    }

    static func render(_ resources: [AnyResource], format: AdminCommands.Format) throws -> String {
        if format == .yaml { return try ResourceCodec.yaml(resources.map(\.value)) }
        let trees = try resources.map { try JSONSerialization.jsonObject(with: ResourceCodec.json($0.value)) }
        let data = try JSONSerialization.data(withJSONObject: trees, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func parseRoles(_ text: String) throws -> [SystemRole] {
        let roles = try text.split(separator: ",").map { name -> SystemRole in
            guard let role = SystemRole(caseInsensitive: name.trimmingCharacters(in: .whitespaces)), role == .node || role == .proxy || role == .db || role == .app
                || role == .kube
            else {
                throw TeleportError.badParameter("\"\(name)\" is not a role a host can join as (expected node, proxy, db, app, kube)")
            }
            return role
        }
        guard !roles.isEmpty else { throw TeleportError.badParameter("no role given (expected node, proxy, db, app, kube)") }
        return roles
    }
}

/// Masking of secrets in output.
enum TokenText {
    static func mask(_ value: String) -> String {
        value.count <= 8 ? "****" : String(value.prefix(4)) + String(repeating: "*", count: 8)
    }
}
