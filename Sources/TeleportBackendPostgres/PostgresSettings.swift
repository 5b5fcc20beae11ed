public import Foundation
import TeleportAPI

/// How to reach PostgreSQL: `teleport.storage.conn_string` (`type: postgresql`) parsed the way libpq
/// reads a `postgresql://` URL, for the parameters the backend honours.
///
/// `postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME?sslmode=verify-full&sslrootcert=CA&sslcert=CERT&sslkey=KEY`.
/// As in libpq: the port defaults to 5432, the database to the user's name, `sslmode` to `prefer`, and
/// `sslcert`/`sslkey`/`sslrootcert` to `~/.postgresql/postgresql.crt`, `postgresql.key` and `root.crt`
/// when those files exist. `passfile` names a `.pgpass`-format file to read the password from.
/// `pool_max_conns` bounds the connection pool (default 20); `connect_timeout` is in seconds (default 10).
public struct PostgresSettings: Sendable, Equatable {
    /// libpq's `sslmode`.
    public enum SSLMode: String, Sendable, Equatable, CaseIterable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    /// From the URL or `passfile`; never printed.
    public var password: String?
    public var database: String
    public var sslMode: SSLMode
    /// The client certificate (PostgreSQL `cert` authentication), its key, and the CA that signed the
    /// server's certificate (PEM files).
    public var sslCert: String?
    public var sslKey: String?
    public var sslRootCert: String?
    public var connectTimeout: Duration
    public var poolMaxConns: Int
    /// The configuration key the settings came from, for error messages (``source`` unless
    /// ``parse(_:home:key:)`` was given another, e.g. `teleport.storage.audit_events_uri`).
    public var configKey: String = PostgresSettings.source

    /// The parameters a conn_string may carry.
    public static let knownParameters = [
        "sslmode", "sslcert", "sslkey", "sslrootcert", "passfile", "connect_timeout", "pool_max_conns", "application_name",
    ]

    /// Where the settings came from, for error messages: `teleport.storage.conn_string`.
    public static let source = "teleport.storage.conn_string"

    /// Creates settings directly (tests; the daemon parses a conn_string).
    public init(
        host: String, port: Int = 5432, user: String, password: String? = nil, database: String, sslMode: SSLMode = .verifyFull,
        sslCert: String? = nil, sslKey: String? = nil, sslRootCert: String? = nil, connectTimeout: Duration = .seconds(10),
        poolMaxConns: Int = 20
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.sslMode = sslMode
        self.sslCert = sslCert
        self.sslKey = sslKey
        self.sslRootCert = sslRootCert
        self.connectTimeout = connectTimeout
        self.poolMaxConns = poolMaxConns
    }

    /// `postgresql://user@host:port/db` (no password), for messages and logs.
    public var displayName: String { "postgresql://\(user)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)" }

    /// Parses a conn_string. `home` is where `~/.postgresql/` defaults are looked up (nil: none).
    /// Every failure is one line naming the part that is wrong and what to write instead.
    public static func parse(
        _ connString: String, home: String? = ProcessInfo.processInfo.environment["HOME"], key: String = PostgresSettings.source
    ) throws -> PostgresSettings {
        let source = key
        let example = "e.g. postgresql://teleport@db.example.com:5432/teleport_backend?sslmode=verify-full"
        let trimmed = connString.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("postgresql://") || trimmed.hasPrefix("postgres://"),
            let components = URLComponents(string: trimmed)
        else {
            throw TeleportError.badParameter("\(source): \"\(redacted(connString))\" is not a postgresql:// URL; \(example)")
        }
        guard let host = components.host, !host.isEmpty else {
            throw TeleportError.badParameter("\(source) names no host; \(example)")
        }
        guard let user = components.user, !user.isEmpty else {
            throw TeleportError.badParameter("\(source) names no user (the name in the client certificate); \(example)")
        }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.contains("/") else {
            throw TeleportError.badParameter("\(source): \"\(path)\" is not a database name; \(example)")
        }
        var settings = PostgresSettings(
            host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: components.port ?? 5432, user: user,
            password: components.password, database: path.isEmpty ? user : path, sslMode: .prefer)
        settings.configKey = key
        var passfile: String?
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw TeleportError.badParameter(
                        "\(source): sslmode=\(value) is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", ")); use verify-full")
                }
                settings.sslMode = mode
            case "sslcert": settings.sslCert = value
            case "sslkey": settings.sslKey = value
            case "sslrootcert": settings.sslRootCert = value
            case "passfile": passfile = value
            case "application_name": break
            case "connect_timeout":
                guard let seconds = Int(value), seconds > 0 else {
                    throw TeleportError.badParameter("\(source): connect_timeout=\(value) is not a positive number of seconds, e.g. 10")
                }
                settings.connectTimeout = .seconds(seconds)
            case "pool_max_conns":
                guard let count = Int(value), count >= 2 else {
                    throw TeleportError.badParameter("\(source): pool_max_conns=\(value) is not a number of at least 2, e.g. 20")
                }
                settings.poolMaxConns = count
            default:
                throw TeleportError.badParameter(
                    "\(source): unknown parameter \"\(item.name)\"; the known ones are \(knownParameters.joined(separator: ", "))")
            }
        }
        if let home {
            let base = home + "/.postgresql/"
            func existing(_ name: String) -> String? {
                FileManager.default.fileExists(atPath: base + name) ? base + name : nil
            }
            if settings.sslCert == nil { settings.sslCert = existing("postgresql.crt") }
            if settings.sslKey == nil, settings.sslCert == base + "postgresql.crt" { settings.sslKey = existing("postgresql.key") }
            if settings.sslRootCert == nil { settings.sslRootCert = existing("root.crt") }
        }
        if (settings.sslCert == nil) != (settings.sslKey == nil) {
            throw TeleportError.badParameter("\(source): give both sslcert and sslkey (the client certificate and its key), or neither")
        }
        if [.verifyCA, .verifyFull].contains(settings.sslMode), settings.sslRootCert == nil {
            throw TeleportError.badParameter(
                "\(source): sslmode=\(settings.sslMode.rawValue) needs sslrootcert=PATH (the CA that signed the server's certificate)")
        }
        if let passfile, settings.password == nil {
            settings.password = try readPassfile(passfile, settings)
        }
        return settings
    }

    /// The password from a `.pgpass`-format file (`host:port:database:user:password`, `*` matches
    /// anything, `\:` and `\\` escaped); the first matching line wins.
    static func readPassfile(_ path: String, _ settings: PostgresSettings) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TeleportError.badParameter("\(source): passfile=\(path) cannot be read; check the path and its permissions")
        }
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            var fields: [String] = []
            var current = ""
            var escaped = false
            for character in line {
                if escaped {
                    current.append(character)
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == ":", fields.count < 4 {
                    fields.append(current)
                    current = ""
                } else {
                    current.append(character)
                }
            }
            fields.append(current)
            guard fields.count == 5 else { continue }
            let wanted = [settings.host, String(settings.port), settings.database, settings.user]
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        throw TeleportError.badParameter(
            "\(source): passfile=\(path) has no line for \(settings.host):\(settings.port):\(settings.database):\(settings.user)")
    }

    /// The conn_string with any password replaced by `***`.
    static func redacted(_ connString: String) -> String {
        guard var components = URLComponents(string: connString), components.password != nil else { return connString }
        components.password = "***"
        return components.string ?? connString
    }
}
