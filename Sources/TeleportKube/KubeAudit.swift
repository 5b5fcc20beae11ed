import Foundation
public import TeleportAPI
public import TeleportEvents

/// Builds the Kubernetes service's audit events and adds them to its ``AuditQueue``: one
/// `kube.request` per API request (verb, resource, namespace, name, status, the impersonated
/// user and groups; never bodies or headers), refusals with their reason, and the
/// `session.start`/`session.end` of recorded interactive `exec`/`attach` sessions.
public struct KubeAudit: Sendable {
    /// The host's outbox.
    public let queue: AuditQueue
    /// `server_id`: the service's host UUID.
    public let serverID: String
    /// The service's host name.
    public let hostname: String
    let clock: any WallClock

    /// Creates the builder.
    public init(queue: AuditQueue, serverID: String, hostname: String, clock: any WallClock = SystemClock()) {
        self.queue = queue
        self.serverID = serverID
        self.hostname = hostname
        self.clock = clock
    }

    /// What every event of one connection carries.
    public struct Connection: Sendable {
        /// The Teleport user.
        public var user: String = ""
        /// The Kubernetes cluster.
        public var cluster: String = ""
        /// The client's address as the proxy saw it.
        public var clientAddress: String = ""
        /// The Kubernetes user and groups requests go as.
        public var kubeUser: String = ""
        public var kubeGroups: [String] = []

        /// Creates the fields.
        public init() {}

        var fields: [String: JSONValue] {
            [
                "user": .string(user), "kubernetes_cluster": .string(cluster), "addr.remote": .string(clientAddress),
                "kubernetes_users": .array(kubeUser.isEmpty ? [] : [.string(kubeUser)]), "kubernetes_groups": .array(kubeGroups.map { .string($0) }),
            ]
        }
    }

    /// `kube.request`: success (a status from the API server) or a refusal with its reason.
    /// False when the outbox refused it (full under `fail_closed`).
    @discardableResult
    public func request(_ connection: Connection, info: KubeRequestInfo?, method: String, status: Int, error: String? = nil) -> Bool {
        var fields = connection.fields
        if let info {
            fields["verb"] = .string(String(info.verb.prefix(32)))
            fields["request_path"] = .string(String(info.path.prefix(2048)))
            fields["resource_api_group"] = .string(String(info.apiGroup.prefix(253)))
            fields["resource_kind"] = .string(String((info.subresource.isEmpty ? info.resource : "\(info.resource)/\(info.subresource)").prefix(253)))
            fields["resource_namespace"] = .string(String(info.namespace.prefix(253)))
            fields["resource_name"] = .string(String(info.name.prefix(253)))
        }
        fields["method"] = .string(String(method.prefix(32)))
        fields["response_code"] = .int(status)
        fields["success"] = .bool(error == nil)
        if let error { fields["error"] = .string(error) }
        return add(error == nil ? AuditEventType.kubeRequest : AuditEventType.kubeRequestFailure, fields)
    }

    /// `session.start` of an interactive exec/attach (its login is the Kubernetes user).
    public func sessionStarted(_ connection: Connection, sid: String, info: KubeRequestInfo, size: String) -> Bool {
        var fields = connection.fields
        fields["sid"] = .string(sid)
        fields["login"] = .string(connection.kubeUser)
        fields["interactive"] = true
        fields["proto"] = "kube"
        fields["kubernetes_pod_namespace"] = .string(info.namespace)
        fields["kubernetes_pod_name"] = .string(info.name)
        fields["server_hostname"] = .string(hostname)
        fields["size"] = .string(size)
        fields["initial_command"] = .array(info.parameters("command").prefix(64).map { .string(String($0.prefix(1024))) })
        return add(AuditEventType.sessionStart, fields)
    }

    /// `session.end` with the command's exit code when the API server reported one.
    public func sessionEnded(_ connection: Connection, sid: String, info: KubeRequestInfo, exitCode: Int?, participants: [String]) {
        var fields = connection.fields
        fields["sid"] = .string(sid)
        fields["login"] = .string(connection.kubeUser)
        fields["interactive"] = true
        fields["proto"] = "kube"
        fields["kubernetes_pod_namespace"] = .string(info.namespace)
        fields["kubernetes_pod_name"] = .string(info.name)
        fields["participants"] = .array(participants.map { .string($0) })
        if let exitCode { fields["exit_code"] = .int(exitCode) }
        add(AuditEventType.sessionEnd, fields)
    }

    /// `exec` of a non-interactive `kubectl exec` (no terminal, so no recording): the command
    /// and the exit code the API server reported (-1 when it reported none).
    public func exec(_ connection: Connection, info: KubeRequestInfo, exitCode: Int?) {
        var fields = connection.fields
        fields["proto"] = "kube"
        fields["login"] = .string(connection.kubeUser)
        fields["kubernetes_pod_namespace"] = .string(info.namespace)
        fields["kubernetes_pod_name"] = .string(info.name)
        fields["command"] = .string(String(info.parameters("command").joined(separator: " ").prefix(4096)))
        fields["exitCode"] = .int(exitCode ?? -1)
        fields["exitError"] = .string(exitCode == 0 ? "" : exitCode.map { "exit status \($0)" } ?? "no exit status")
        add(exitCode == 0 ? AuditEventType.exec : AuditEventType.execFailure, fields)
    }

    /// `session.join`/`session.leave` of someone joining a live session with `tsh join`.
    public func party(_ connection: Connection, sid: String, mode: String, joined: Bool) {
        var fields = connection.fields
        fields["sid"] = .string(sid)
        fields["proto"] = "kube"
        fields["mode"] = .string(mode)
        add(joined ? AuditEventType.sessionJoin : AuditEventType.sessionLeave, fields)
    }

    /// Whether new requests may go (the outbox is not full under `fail_closed`).
    public var admits: Bool { queue.admits }

    @discardableResult
    func add(_ type: (String, String), _ fields: [String: JSONValue]) -> Bool {
        var all = fields
        all["namespace"] = "default"
        all["server_id"] = .string(serverID)
        do {
            try queue.add(AuditEvent(event: type.0, code: type.1, time: clock.now(), fields: all))
            return true
        } catch {
            return false
        }
    }
}
