/// The one error type of the project.
///
/// Errors are equal by ``Code``: callers branch on the code, people read the message. A driver's own
/// error (SQLite, NIO, TLS) never crosses its adapter unconverted; the adapter wraps it as `cause`.
public struct TeleportError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What kind of failure this is. Transports map codes to HTTP status codes and SSH replies.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The stable string form, used on the wire (`"not_found"`, ...).
        public let rawValue: String
        init(_ rawValue: String) { self.rawValue = rawValue }

        /// The thing asked for does not exist.
        public static let notFound = Code("not_found")
        /// The thing to create exists already.
        public static let alreadyExists = Code("already_exists")
        /// The caller's input is wrong.
        public static let badParameter = Code("bad_parameter")
        /// A compare-and-swap found another value than expected.
        public static let compareFailed = Code("compare_failed")
        /// The caller is not allowed to do this.
        public static let accessDenied = Code("access_denied")
        /// A peer or a resource (file, socket, database) could not be reached.
        public static let connectionProblem = Code("connection_problem")
        /// A limit (size, rate, count) was exceeded.
        public static let limitExceeded = Code("limit_exceeded")
        /// A bug or an unexpected state on our side.
        public static let internalError = Code("internal")
        /// The audit log cannot store events (a full or failing disk): what must be audited may
        /// not proceed until it can.
        public static let auditUnavailable = Code("audit_unavailable")

        /// Every code, for decoding the wire form.
        public static let all: [Code] = [
            .notFound, .alreadyExists, .badParameter, .compareFailed, .accessDenied, .connectionProblem,
            .limitExceeded, .internalError, .auditUnavailable,
        ]

        /// The code for a wire string; unknown strings become ``internalError``.
        public static func fromWire(_ value: String) -> Code {
            all.first { $0.rawValue == value } ?? .internalError
        }

        public var description: String { rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// A one-line message for people: the cause and, where we know it, the fix.
    public var message: String
    /// The underlying error, kept for logs; never shown over the wire.
    public var cause: (any Error & Sendable)?

    /// Creates an error.
    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }

    public static func == (lhs: TeleportError, rhs: TeleportError) -> Bool { lhs.code == rhs.code }

    /// A `notFound` error.
    public static func notFound(_ message: String) -> TeleportError { .init(.notFound, message) }
    /// An `alreadyExists` error.
    public static func alreadyExists(_ message: String) -> TeleportError { .init(.alreadyExists, message) }
    /// A `badParameter` error.
    public static func badParameter(_ message: String) -> TeleportError { .init(.badParameter, message) }
    /// A `compareFailed` error.
    public static func compareFailed(_ message: String) -> TeleportError { .init(.compareFailed, message) }
    /// An `accessDenied` error.
    public static func accessDenied(_ message: String) -> TeleportError { .init(.accessDenied, message) }
    /// A `connectionProblem` error.
    public static func connectionProblem(_ message: String, cause: (any Error & Sendable)? = nil) -> TeleportError {
        .init(.connectionProblem, message, cause: cause)
    }
    /// A `limitExceeded` error.
    public static func limitExceeded(_ message: String) -> TeleportError { .init(.limitExceeded, message) }
    /// An `internalError` error.
    public static func internalError(_ message: String, cause: (any Error & Sendable)? = nil) -> TeleportError {
        .init(.internalError, message, cause: cause)
    }
}

extension TeleportError {
    /// True when `error` is a ``TeleportError`` with `code`.
    public static func matches(_ error: any Error, _ code: Code) -> Bool {
        (error as? TeleportError)?.code == code
    }
}
