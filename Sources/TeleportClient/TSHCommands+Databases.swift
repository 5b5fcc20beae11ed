import Foundation
import TeleportCrypto
import TeleportAuthClient
import X509
public import TeleportAPI

extension TSHCommands {
    /// Output formats of `tsh db ls`.
    public enum DatabaseListFormat: String, CaseIterable, Sendable {
        case text, json
    }

    /// `tsh db ls [k=v,...] [--format text|json]`: the databases your roles' `db_labels` allow.
    public static func listDatabases(
        _ options: ClientOptions, labels: String, format: DatabaseListFormat, context: ClientContext
    ) async throws -> Outcome {
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        let databases = try await web.databases(labels: labels)
        switch format {
        case .json:
            let trees = try databases.map { try JSONSerialization.jsonObject(with: ResourceCodec.json($0)) }
            let data = try JSONSerialization.data(withJSONObject: trees, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            return Outcome(output: String(decoding: data, as: UTF8.self) + "\n")
        case .text:
            let rows = databases.map { database in
                [
                    database.name, database.spec.description ?? "", database.spec.protocol.rawValue,
                    database.allLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
                ]
            }
            return Outcome(output: Table.render(headers: ["Name", "Description", "Protocol", "Labels"], rows: rows))
        }
    }
}

extension TSHCommands {
    /// Where a profile's database certificates live: `keys/HOST/USER-db/NAME-x509.pem` (0600),
    /// next to the user's key (`USER.tls.key`, the certificates' key) and the cluster's CAs.
    struct DatabaseFiles {
        let profile: Profile
        let paths: ProfileStore.KeyPaths
        let directory: URL

        func certificate(_ name: String) -> URL { directory.appendingPathComponent("\(name)-x509.pem") }

        /// The databases logged in to, by name.
        func loggedIn() -> [String] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            return names.filter { $0.hasSuffix("-x509.pem") }.map { String($0.dropLast("-x509.pem".count)) }.sorted()
        }
    }

    /// The current profile's database files; `tsh db` needs a `tsh login` profile.
    static func databaseFiles(_ options: ClientOptions, context: ClientContext) throws -> DatabaseFiles {
        guard options.identityFile == nil else {
            throw TeleportError.badParameter("tsh db login, config, env and connect need a tsh login profile, not -i (identity files hold no database certificates)")
        }
        guard let name = try context.store.currentProfileName() else {
            throw TeleportError.accessDenied("not logged in: run tsh login --proxy=HOST first")
        }
        let profile = try context.store.loadProfile(name)
        let paths = context.store.keyPaths(profile: name, user: profile.user)
        return DatabaseFiles(profile: profile, paths: paths, directory: paths.directory.appendingPathComponent("\(profile.user)-db"))
    }

    /// `tsh db login NAME --db-user=U [--db-name=D]`: a certificate for the database, from the
    /// auth service through the proxy, stored in the profile.
    public static func databaseLogin(
        _ options: ClientOptions, name: String, dbUser: String?, dbName: String?, context: ClientContext
    ) async throws -> Outcome {
        let files = try databaseFiles(options, context: context)
        guard let dbUser, !dbUser.isEmpty else {
            throw TeleportError.badParameter("tsh db login \(name): pass --db-user=NAME (the database user to connect as)")
        }
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        let issued = try await web.databaseLogin(name: name, dbUser: dbUser, dbName: dbName ?? "")
        try context.store.makePrivateDirectory(files.directory)
        try SecureFile.write(Data(issued.certificatePEM.utf8), to: files.certificate(name), mode: 0o600)
        let database = (dbName ?? "").isEmpty ? "the user's default database" : "database \(dbName ?? "")"
        return Outcome(output: "Logged into database \(name) as db user \(dbUser) (\(database)).\nConnect with: tsh db connect \(name)\n")
    }

    /// `tsh db logout [NAME]`: removes one database's certificate, or all of them.
    public static func databaseLogout(_ options: ClientOptions, name: String?, context: ClientContext) throws -> Outcome {
        let files = try databaseFiles(options, context: context)
        let names = name.map { [$0] } ?? files.loggedIn()
        guard !names.isEmpty else { return Outcome(output: "Not logged into any database.\n") }
        var lines = ""
        for database in names {
            let url = files.certificate(database)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw TeleportError.notFound("not logged into database \(database) (tsh db login \(database))")
            }
            try FileManager.default.removeItem(at: url)
            lines += "Logged out of database \(database).\n"
        }
        return Outcome(output: lines)
    }

    /// How to reach one logged-in database through the proxy.
    struct DatabaseConnection {
        var name: String
        /// `postgres` or `mysql`.
        var `protocol`: DatabaseServer.DatabaseProtocol = .postgres
        var host: String
        var port: Int
        var user: String
        var database: String
        var ca: String
        var certificate: String
        var key: String
        /// The ALPN protocol when the connection goes through the proxy's web port (TLS routing);
        /// nil: the protocol's own listener.
        var alpn: String?

        /// The libpq connection string (`sslmode=verify-ca`: the proxy's certificate is the
        /// cluster host CA's, for the proxy's host identity).
        var conninfo: String {
            var parts = [
                "host=\(host)", "port=\(port)", "sslmode=verify-ca", "sslrootcert=\(ca)", "sslcert=\(certificate)", "sslkey=\(key)",
                "user=\(user)",
            ]
            if !database.isEmpty { parts.append("dbname=\(database)") }
            return parts.map { part in
                let (key, value) = (part.prefix { $0 != "=" }, part.drop { $0 != "=" }.dropFirst())
                return value.contains(where: { $0 == " " || $0 == "'" || $0 == "\\" })
                    ? "\(key)='\(value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'"))'" : part
            }.joined(separator: " ")
        }

        /// The MySQL/MariaDB client's options: TCP to the proxy, TLS with the certificate, the
        /// CA checked but not the name (the proxy presents its host identity, whose names need
        /// not match the address dialled): MariaDB's client checks the CA when given `--ssl-ca`
        /// and the name only with `--ssl-verify-server-cert` (turned off explicitly, for clients
        /// where it is the default); Oracle's client needs `--ssl-mode=VERIFY_CA`.
        func mysqlArguments(mariaDB: Bool) -> [String] {
            var arguments = ["--host=\(host)", "--port=\(port)", "--protocol=TCP", "--user=\(user)"]
            if !database.isEmpty { arguments.append("--database=\(database)") }
            arguments += ["--ssl-ca=\(ca)", "--ssl-cert=\(certificate)", "--ssl-key=\(key)"]
            arguments.append(mariaDB ? "--skip-ssl-verify-server-cert" : "--ssl-mode=VERIFY_CA")
            return arguments
        }
    }

    /// The MySQL client on PATH (`mariadb` first, then `mysql`) and whether it is MariaDB's.
    static func mysqlClient(environment: [String: String]) -> (path: String, mariaDB: Bool)? {
        if let path = ProgramPath.find("mariadb", environment: environment) { return (path, true) }
        guard let path = ProgramPath.find("mysql", environment: environment) else { return nil }
        // Debian's mysql is MariaDB's client (a link to mariadb); Oracle's is a file of its own.
        let resolved = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? path
        return (path, resolved.hasSuffix("mariadb") || mysqlVersion(path).contains("MariaDB"))
    }

    /// `PROGRAM --version`'s output (empty when it cannot run).
    static func mysqlVersion(_ path: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--version"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return "" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// The connection to `name` (or the only database logged in to).
    /// `tlsRouting`: the caller can reach the database through the web port by ALPN (`tsh proxy
    /// db --tunnel`), which it does when the proxy has no listener of the protocol or reports
    /// `tls_routing_enabled`, and always for MySQL; the connection's
    /// ``DatabaseConnection/alpn`` then names the protocol.
    static func databaseConnection(_ options: ClientOptions, name: String?, context: ClientContext, tlsRouting: Bool = false) async throws -> DatabaseConnection {
        let files = try databaseFiles(options, context: context)
        let chosen: String
        if let name {
            chosen = name
        } else {
            let all = files.loggedIn()
            guard all.count == 1 else {
                throw TeleportError.badParameter(
                    all.isEmpty ? "not logged into any database: tsh db login NAME --db-user=USER"
                        : "logged into several databases (\(all.joined(separator: ", "))): name one")
            }
            chosen = all[0]
        }
        let url = files.certificate(chosen)
        guard let pem = try? String(contentsOf: url, encoding: .utf8) else {
            throw TeleportError.notFound("not logged into database \(chosen): tsh db login \(chosen) --db-user=USER")
        }
        let identity = try X509Identity(certificate: try Certificate.fromPEM(pem))
        guard let route = identity.routeToDatabase else {
            throw TeleportError.badParameter("\(url.path) carries no database route: tsh db login \(chosen) again")
        }
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.transport(session.address, session.insecure), address: session.address)
        let databaseProtocol = DatabaseServer.DatabaseProtocol(rawValue: route.protocol) ?? .postgres
        let proxy = try await web.ping().proxy
        let db = proxy.db
        let (listen, defaultPort, key, kind) = databaseProtocol == .mysql
            ? (db?.mysqlListenAddr ?? "", 3036, "mysql_listen_addr", "MySQL")
            : (db?.postgresListenAddr ?? "", 5432, "postgres_listen_addr", "PostgreSQL")
        var connection = DatabaseConnection(
            name: chosen, protocol: databaseProtocol, host: files.profile.webProxyAddress.host, port: files.profile.webProxyAddress.port,
            user: route.username, database: route.database, ca: files.paths.caCertificates.path, certificate: url.path,
            key: files.paths.tlsKey.path)
        // The MySQL tunnel speaks to the proxy inside TLS from the first byte, which only the web port offers.
        if tlsRouting && (listen.isEmpty || proxy.tlsRoutingEnabled == true || databaseProtocol == .mysql) {
            connection.alpn = databaseProtocol.alpnProtocol
            return connection
        }
        guard !listen.isEmpty, let parsed = try? HostPort.parse(listen, defaultPort: defaultPort, key: key) else {
            throw TeleportError.notFound(
                "the proxy at \(session.address) has no \(kind) listener (proxy_service.\(key)); tsh proxy db \(chosen) --tunnel reaches it through the web port")
        }
        connection.port = parsed.port
        return connection
    }

    /// `tsh db config [NAME]`: host, port, CA, certificate, key and a ready psql or mysql command line.
    public static func databaseConfig(_ options: ClientOptions, name: String?, context: ClientContext) async throws -> Outcome {
        let connection = try await databaseConnection(options, name: name, context: context)
        let rows = [
            ("Name", connection.name), ("Host", connection.host), ("Port", "\(connection.port)"), ("User", connection.user),
            ("Database", connection.database), ("CA", connection.ca), ("Cert", connection.certificate), ("Key", connection.key),
        ]
        let text = rows.map { "\(($0.0 + ":").padding(toLength: 10, withPad: " ", startingAt: 0)) \($0.1)" }.joined(separator: "\n")
        let command: String
        switch connection.protocol {
        case .postgres:
            command = "psql \(ShellQuote.word(connection.conninfo))"
        case .mysql:
            let client = mysqlClient(environment: context.environment)
            command = (["mysql"] + connection.mysqlArguments(mariaDB: client?.mariaDB ?? true)).map(ShellQuote.word).joined(separator: " ")
        }
        return Outcome(output: text + "\n\nConnect with:\n  \(command)\n")
    }

    /// `tsh db env [--db NAME]`: the libpq environment variables (for MySQL: `MYSQL_HOST` and
    /// `MYSQL_TCP_PORT`; its clients take no TLS files from the environment).
    public static func databaseEnv(_ options: ClientOptions, name: String?, context: ClientContext) async throws -> Outcome {
        let c = try await databaseConnection(options, name: name, context: context)
        if c.protocol == .mysql {
            return Outcome(output: "export MYSQL_HOST=\(ShellQuote.word(c.host))\nexport MYSQL_TCP_PORT=\(c.port)\n")
        }
        let variables = [
            ("PGHOST", c.host), ("PGPORT", "\(c.port)"), ("PGSSLMODE", "verify-ca"), ("PGSSLROOTCERT", c.ca), ("PGSSLCERT", c.certificate),
            ("PGSSLKEY", c.key), ("PGUSER", c.user),
        ] + (c.database.isEmpty ? [] : [("PGDATABASE", c.database)])
        return Outcome(output: variables.map { "export \($0.0)=\(ShellQuote.word($0.1))" }.joined(separator: "\n") + "\n")
    }

    /// Logs in to database `name` when there is no certificate for it, or when another db user or
    /// db name is asked for than the certificate's.
    static func ensureDatabaseLogin(_ options: ClientOptions, name: String, dbUser: String?, dbName: String?, context: ClientContext) async throws {
        let files = try databaseFiles(options, context: context)
        var current: X509Identity.DatabaseRoute?
        if let pem = try? String(contentsOf: files.certificate(name), encoding: .utf8) {
            current = try? X509Identity(certificate: try Certificate.fromPEM(pem)).routeToDatabase
        }
        let wantedUser = dbUser ?? current?.username
        let wantedName = dbName ?? current?.database ?? ""
        if current == nil || current?.username != wantedUser || current?.database != wantedName {
            _ = try await databaseLogin(options, name: name, dbUser: wantedUser, dbName: wantedName, context: context)
        }
    }

    /// `tsh db connect NAME [--db-user --db-name] [-- CLIENT ARGS]`: logs in to the database when
    /// there is no certificate for it or another user or name is asked for, then runs the real
    /// `psql` with the connection string, or `mariadb`/`mysql` with the options of
    /// ``DatabaseConnection/mysqlArguments(mariaDB:)`` (found on PATH); its exit status is tsh's.
    public static func databaseConnect(
        _ options: ClientOptions, name: String, dbUser: String?, dbName: String?, extra: [String], context: ClientContext
    ) async throws -> Int32 {
        try await ensureDatabaseLogin(options, name: name, dbUser: dbUser, dbName: dbName, context: context)
        let connection = try await databaseConnection(options, name: name, context: context)
        let program: String
        let arguments: [String]
        switch connection.protocol {
        case .postgres:
            guard let psql = ProgramPath.find("psql", environment: context.environment) else {
                throw TeleportError.notFound("psql is not installed or not on PATH (Debian: apt-get install postgresql-client)")
            }
            (program, arguments) = (psql, [connection.conninfo] + extra)
        case .mysql:
            guard let client = mysqlClient(environment: context.environment) else {
                throw TeleportError.notFound("neither mariadb nor mysql is installed or on PATH (Debian: apt-get install mariadb-client)")
            }
            // Ours first, the user's after them (later options win).
            (program, arguments) = (client.path, connection.mysqlArguments(mariaDB: client.mariaDB) + extra)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        do {
            try process.run()
        } catch {
            throw TeleportError.connectionProblem("cannot run \(program): \(error)")
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// Finds a program on `PATH`.
enum ProgramPath {
    static func find(_ name: String, environment: [String: String]) -> String? {
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
