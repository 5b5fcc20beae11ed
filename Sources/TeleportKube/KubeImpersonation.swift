public import TeleportWire

/// Decides whom a request is sent to the API server as: the Kubernetes user and groups the
/// user's roles grant on the cluster (`kubernetes_users`, `kubernetes_groups`), never more. A
/// request that names its own `Impersonate-User`/`Impersonate-Group` (kubectl's `--as`,
/// `--as-group`) is allowed only when the roles grant exactly those; `Impersonate-Uid` and
/// `Impersonate-Extra-*` are always refused. Pure: table-tested without I/O.
public enum KubeImpersonation {
    /// The outcome.
    public enum Decision: Sendable, Equatable {
        /// Send the request as this user in these groups.
        case impersonate(user: String, groups: [String])
        /// Refuse it, with one line saying why.
        case refuse(String)
    }

    /// Decides for a request whose headers are `headers`.
    ///
    /// - Parameters:
    ///   - teleportUser: the Teleport user (the Kubernetes user when the roles name none).
    ///   - users: the roles' `kubernetes_users` on this cluster (templates expanded).
    ///   - groups: the roles' `kubernetes_groups` on this cluster.
    public static func decide(headers: [HTTP1Head.Header], teleportUser: String, users: [String], groups: [String], cluster: String)
        -> Decision
    {
        var requestedUsers: [String] = []
        var requestedGroups: [String] = []
        for header in headers {
            let name = header.name.lowercased()
            guard name.hasPrefix("impersonate-") else { continue }
            switch name {
            case "impersonate-user": requestedUsers.append(header.value)
            case "impersonate-group": requestedGroups.append(header.value)
            default:
                return .refuse("the \(header.name.prefix(64)) header is not allowed: Teleport sets the impersonation from your roles")
            }
        }
        guard !users.isEmpty || !groups.isEmpty else {
            return .refuse(
                "your roles grant no kubernetes_groups or kubernetes_users on Kubernetes cluster \(cluster); ask an administrator to add them to a role")
        }
        guard requestedUsers.count <= 1 else { return .refuse("more than one Impersonate-User header") }
        let user: String
        if let requested = requestedUsers.first {
            let allowed = users.isEmpty ? [teleportUser] : users
            guard allowed.contains(requested) else {
                return .refuse(
                    "impersonating user \"\(requested.prefix(128))\" is not allowed: your roles grant kubernetes_users \(allowed) on cluster \(cluster)")
            }
            user = requested
        } else if users.count > 1 {
            return .refuse("your roles grant several kubernetes_users (\(users.joined(separator: ", "))): choose one with kubectl --as=USER")
        } else {
            user = users.first ?? teleportUser
        }
        if let denied = requestedGroups.first(where: { !groups.contains($0) }) {
            return .refuse(
                "impersonating group \"\(denied.prefix(128))\" is not allowed: your roles grant kubernetes_groups \(groups) on cluster \(cluster)")
        }
        return .impersonate(user: user, groups: requestedGroups.isEmpty ? groups : requestedGroups)
    }

    /// The WebSocket subprotocols an upgraded request may ask for (exec, attach and
    /// port-forward as kubectl speaks them).
    public static let webSocketProtocols: Set<String> = [
        "v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io",
        "v4.base64.channel.k8s.io", "base64.channel.k8s.io", "SPDY/3.1+portforward.k8s.io", "portforward.k8s.io",
        "v2.portforward.k8s.io",
    ]

    /// Checks an upgrade request (`Upgrade:` present): a WebSocket handshake (version 13, a key of
    /// 16 bytes in base64, `Connection: upgrade`, only Kubernetes' subprotocols) on a pod's
    /// `exec`, `attach` or `portforward`. Returns nil when it is well formed, else the reason.
    public static func upgradeProblem(_ head: HTTP1Head, info: KubeRequestInfo) -> String? {
        let upgrade = head.values("upgrade")
        guard upgrade.count == 1 else { return "the Upgrade header must name one protocol" }
        guard head.connectionHas("upgrade") else { return "an upgrade request needs Connection: Upgrade" }
        if upgrade[0].lowercased() == "spdy/3.1" {
            // kubectl's fallback for port-forward. exec and attach over SPDY could not be recorded
            // or joined (the service reads their WebSocket channels), so they are refused.
            guard info.resource == "pods", info.subresource == "portforward" else {
                return "exec and attach over SPDY are not supported (their sessions could not be recorded): use kubectl 1.30 or later, which speaks WebSocket"
            }
            guard head.first == "POST" else { return "a SPDY upgrade must be a POST" }
            let versions = head.values("x-stream-protocol-version").flatMap { $0.split(separator: ",") }.map {
                String($0.filter { $0 != " " && $0 != "\t" })
            }
            guard versions.contains("portforward.k8s.io") else { return "X-Stream-Protocol-Version must name portforward.k8s.io" }
            return nil
        }
        guard upgrade[0].lowercased() == "websocket" else {
            return "upgrading to \(upgrade[0].prefix(32)) is not supported (WebSocket, or SPDY/3.1 for port-forward; use kubectl 1.30 or later)"
        }
        guard head.first == "GET" else { return "a WebSocket upgrade must be a GET" }
        guard info.resource == "pods", ["exec", "attach", "portforward"].contains(info.subresource) else {
            return "only a pod's exec, attach and portforward may be upgraded"
        }
        guard head.value("sec-websocket-version") == "13" else { return "Sec-WebSocket-Version must be 13" }
        guard let key = head.value("sec-websocket-key"), key.utf8.count == 24, key.hasSuffix("=="),
            key.utf8.dropLast(2).allSatisfy({ isBase64($0) })
        else { return "Sec-WebSocket-Key must be 16 bytes in base64" }
        let protocols = head.values("sec-websocket-protocol")
        guard !protocols.isEmpty else { return "Sec-WebSocket-Protocol must name a Kubernetes stream protocol (v5.channel.k8s.io)" }
        if let unknown = protocols.first(where: { !webSocketProtocols.contains($0) }) {
            return "the WebSocket subprotocol \(unknown.prefix(64)) is not one Kubernetes speaks"
        }
        return nil
    }

    static func isBase64(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "+"), UInt8(ascii: "/"):
            return true
        default: return false
        }
    }
}
