import Foundation
public import TeleportAPI
public import TeleportEvents

/// Builds the application session events (`app.session.start`, one `app.session.request` per
/// request, `app.session.end`) and adds them to the service's ``AuditQueue``. Requests are
/// summarised by method, path, status and duration: never bodies, cookies or headers.
public struct AppAudit: Sendable {
    /// The host's outbox.
    public let queue: AuditQueue
    /// `server_id`: the service's host UUID.
    public let serverID: String
    let clock: any WallClock

    /// Creates the builder.
    public init(queue: AuditQueue, serverID: String, clock: any WallClock = SystemClock()) {
        self.queue = queue
        self.serverID = serverID
        self.clock = clock
    }

    /// The fields every event of one session carries.
    public struct Session: Sendable {
        /// `sid`.
        public var id: String
        /// The Teleport user.
        public var user: String
        /// The app's name.
        public var app: String
        /// The app's public address.
        public var publicAddr: String
        /// The app's internal URI.
        public var uri: String
        /// The client's address (as the proxy saw it).
        public var clientAddress: String

        /// Creates the fields.
        public init(id: String, user: String, app: String, publicAddr: String, uri: String, clientAddress: String) {
            self.id = id
            self.user = user
            self.app = app
            self.publicAddr = publicAddr
            self.uri = uri
            self.clientAddress = clientAddress
        }

        var fields: [String: JSONValue] {
            [
                "sid": .string(id), "user": .string(user), "app_name": .string(app), "app_public_addr": .string(publicAddr),
                "app_uri": .string(uri), "addr.remote": .string(clientAddress),
            ]
        }
    }

    /// `app.session.start`: success, or the refusal and its reason.
    public func started(_ session: Session, refusal: String? = nil) {
        var fields = session.fields
        fields["success"] = .bool(refusal == nil)
        if let refusal { fields["error"] = .string(refusal) }
        add(refusal == nil ? AuditEventType.appSessionStart : AuditEventType.appSessionStartFailure, fields)
    }

    /// `app.session.request`: one request's method, path (without the query), status and
    /// duration in milliseconds. False when the outbox refused it (full under `fail_closed`).
    @discardableResult
    public func request(_ session: Session, method: String, path: String, status: Int, milliseconds: Int) -> Bool {
        var fields = session.fields
        fields["method"] = .string(String(method.prefix(32)))
        fields["path"] = .string(String((path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path).prefix(2048)))
        fields["status_code"] = .int(status)
        fields["duration_ms"] = .int(milliseconds)
        return add(AuditEventType.appSessionRequest, fields)
    }

    /// Whether new sessions may start (the outbox is not full under `fail_closed`).
    public var admits: Bool { queue.admits }

    /// `app.session.end`.
    public func ended(_ session: Session) {
        add(AuditEventType.appSessionEnd, session.fields)
    }

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
