import Foundation
public import TeleportAPI
public import TeleportEvents
import NIOCore

/// Builds the database session events (`db.session.start`, `db.session.query`,
/// `db.session.end`) with the seed's fields (`db_service`, `db_name`, `db_user`, `db_protocol`,
/// `db_uri`) and adds them to the service's ``AuditQueue``.
public struct DatabaseAudit: Sendable {
    /// The host's outbox.
    public let queue: AuditQueue
    /// `server_id`: the service's host UUID.
    public let serverID: String
    /// The clock of event times.
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
        /// The database, its protocol and address.
        public var service: String
        public var `protocol`: String
        public var uri: String
        /// The database user and name.
        public var dbUser: String
        public var dbName: String
        /// The client's address (as the proxy saw it).
        public var clientAddress: String

        /// Creates the fields.
        public init(
            id: String, user: String, service: String, protocol: String, uri: String, dbUser: String, dbName: String, clientAddress: String
        ) {
            self.id = id
            self.user = user
            self.service = service
            self.protocol = `protocol`
            self.uri = uri
            self.dbUser = dbUser
            self.dbName = dbName
            self.clientAddress = clientAddress
        }

        var fields: [String: JSONValue] {
            [
                "sid": .string(id), "user": .string(user), "db_service": .string(service), "db_protocol": .string(`protocol`),
                "db_uri": .string(uri), "db_user": .string(dbUser), "db_name": .string(dbName), "addr.remote": .string(clientAddress),
            ]
        }
    }

    /// `db.session.start`: success, or the refusal and its reason.
    public func started(_ session: Session, refusal: String? = nil) {
        var fields = session.fields
        fields["success"] = .bool(refusal == nil)
        if let refusal { fields["error"] = .string(refusal) }
        add(refusal == nil ? AuditEventType.dbSessionStart : AuditEventType.dbSessionStartFailure, fields)
    }

    /// `db.session.query`: a statement's text (`truncated` when cut for length) and, for an
    /// extended-protocol execution, its parameters (`db_query_parameters`). False when the
    /// outbox refused it (full under `fail_closed`): the session must end rather than go on
    /// unaudited.
    @discardableResult
    public func query(_ session: Session, text: String, parameters: [String?]? = nil, truncated: Bool) -> Bool {
        var fields = session.fields
        fields["db_query"] = .string(text)
        if let parameters { fields["db_query_parameters"] = .array(parameters.map { $0.map(JSONValue.string) ?? .null }) }
        if truncated { fields["truncated"] = .bool(true) }
        return add(AuditEventType.dbSessionQuery, fields)
    }

    /// A statement as the session's recording shows it (`tsh play`): its text, then its
    /// parameters on a comment line, each line ended for a terminal.
    public static func recorded(_ text: String, parameters: [String?]?) -> String {
        var lines = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n") + "\r\n"
        if let parameters, !parameters.isEmpty {
            let shown = parameters.enumerated().map { "$\($0.offset + 1) = " + ($0.element.map { "'\($0)'" } ?? "NULL") }
            lines += "-- parameters: " + shown.joined(separator: ", ") + "\r\n"
        }
        return lines
    }

    /// Whether new sessions may start (the outbox is not full under `fail_closed`).
    public var admits: Bool { queue.admits }

    /// `db.session.end`.
    public func ended(_ session: Session) {
        add(AuditEventType.dbSessionEnd, session.fields)
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
