import Foundation
import NIOCore
import NIOSSL
import PostgresNIO
import TeleportAPI

extension PostgresBackend {
    /// SQLSTATEs a write retries on: serialization failure and deadlock (two auth servers racing).
    static let retryableStates: Set<String> = ["40001", "40P01"]

    /// The SQLSTATE of a server error, if `error` is one.
    static func sqlState(_ error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// Converts a driver error into one ``TeleportError`` line that names the cause and the fix; a
    /// `TeleportError` passes through. `settings` names the server in the message.
    static func convert(_ error: any Error, _ settings: PostgresSettings) -> TeleportError {
        if let error = error as? TeleportError { return error }
        let server = settings.displayName
        if let error = error as? PSQLError {
            if let info = error.serverInfo {
                let message = info[.message] ?? "no message"
                switch info[.sqlState] ?? "" {
                case "28000", "28P01":
                    return .accessDenied(
                        "PostgreSQL at \(server) refused user \(settings.user): \(message); check the client certificate (sslcert/sslkey, its name must be the user) or the password, and pg_hba.conf"
                    )
                case "3D000":
                    return .notFound(
                        "PostgreSQL at \(server) has no database \(settings.database); create it (CREATE DATABASE \(settings.database) OWNER \(settings.user)) or fix conn_string")
                case "42501":
                    return .accessDenied(
                        "PostgreSQL user \(settings.user) may not do this in \(settings.database): \(message); make the user the database's owner")
                case "53300":
                    return .limitExceeded("PostgreSQL at \(server) has no free connections (\(message)); try again, or raise max_connections")
                case "57P01", "57P02", "57P03", "08000", "08003", "08006":
                    return .connectionProblem("PostgreSQL at \(server) is not available (\(message)); try again", cause: error)
                case "53100":
                    return .limitExceeded("PostgreSQL at \(server) is out of disk space (\(message)); free space on the database server")
                case "25006":
                    return .connectionProblem("PostgreSQL at \(server) is read-only (\(message)); point conn_string at the primary", cause: error)
                case let state where retryableStates.contains(state):
                    return .compareFailed("PostgreSQL aborted a conflicting write (\(message)); try again")
                default:
                    return .internalError("PostgreSQL at \(server): \(message) (SQLSTATE \(info[.sqlState] ?? "?"))", cause: error)
                }
            }
            switch error.code {
            case .sslUnsupported:
                return .connectionProblem(
                    "PostgreSQL at \(server) does not accept TLS but sslmode=\(settings.sslMode.rawValue) needs it; enable ssl on the server")
            case .connectionError, .failedToAddSSLHandler:
                return connectionFailure(error.underlying ?? error, settings)
            case .authMechanismRequiresPassword:
                return .accessDenied(
                    "PostgreSQL at \(server) asks user \(settings.user) for a password and conn_string has none; add a client certificate (sslcert/sslkey) or passfile")
            case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
                return .connectionProblem("the connection to PostgreSQL at \(server) was closed; try again", cause: error)
            default:
                return .connectionProblem("PostgreSQL at \(server): \(error.code)", cause: error)
            }
        }
        if error is NIOSSLError || error is BoringSSLError {
            return .connectionProblem(
                "the TLS handshake with PostgreSQL at \(server) failed (\(error)); check sslrootcert and that the server's certificate names \(settings.host)")
        }
        if error is CancellationError { return .connectionProblem("the PostgreSQL call was cancelled") }
        return connectionFailure(error, settings)
    }

    private static func connectionFailure(_ error: any Error, _ settings: PostgresSettings) -> TeleportError {
        if String(describing: error).contains("CircuitBreakerTripped") {
            // The pool's recent connection attempts all failed; it fails calls at once and keeps
            // trying with back-off (at most a minute apart) until one succeeds.
            return .connectionProblem(
                "PostgreSQL at \(settings.host):\(settings.port) takes no new connections: the recent attempts all failed "
                    + "(the server is down or unreachable, or has no free connections: max_connections); retrying with back-off, try again later")
        }
        if error is NIOSSLError || error is BoringSSLError {
            return .connectionProblem(
                "the TLS handshake with PostgreSQL at \(settings.displayName) failed (\(error)); check sslrootcert and that the server's certificate names \(settings.host)")
        }
        return .connectionProblem(
            "cannot reach PostgreSQL at \(settings.host):\(settings.port) (\(error)); check conn_string's host and port and that the server runs")
    }
}
