import Foundation
import TeleportAPI
import TeleportDaemon
import Testing

/// `db_service` in teleport.yaml and `proxy_service.postgres_listen_addr`/`mysql_listen_addr`: a good section parses
/// into its entries; each bad one is one line naming the key and the fix.
@Suite("db_service configuration")
struct DatabaseServiceConfigTests {
    static let file = "/etc/teleport/db.yaml"

    @Test func aDatabaseSectionParses() throws {
        let yaml = """
            proxy_service:
              postgres_listen_addr: 0.0.0.0:5433
              mysql_listen_addr: 0.0.0.0
            db_service:
              enabled: true
              listen_addr: 127.0.0.1:3029
              databases:
              - name: sales
                description: Sales
                protocol: postgres
                uri: db.internal:5432
                static_labels:
                  env: prod
                dynamic_labels:
                - name: hostname
                  command: ["/bin/hostname"]
                  period: 2m
                tls:
                  mode: verify-ca
                  server_name: db.internal
              - name: billing
                protocol: mysql
                uri: 10.0.0.5:3306

            """
        let config = try FileConfig.parse(yaml, file: Self.file)
        #expect(config.proxy.postgresListenAddr == "0.0.0.0:5433")
        #expect(config.proxy.mysqlListenAddr == "0.0.0.0:3036", "Teleport's MySQL port by default")
        #expect(FileConfig().proxy.mysqlListenAddr == nil, "off unless set")
        #expect(config.db.enabled && config.db.listenAddr == "127.0.0.1:3029")
        #expect(config.db.databases.map(\.name) == ["sales", "billing"])
        #expect(config.db.databases[0].staticLabels == ["env": "prod"] && config.db.databases[0].tlsMode == "verify-ca")
        #expect(config.db.databases[0].serverName == "db.internal" && config.db.databases[1].tlsMode == "verify-full")
        #expect(config.db.databases[0].dynamicLabels.map(\.name) == ["hostname"] && config.db.databases[0].dynamicLabels.first?.period == 120)
        #expect(!FileConfig().db.enabled, "off by default")
    }

    @Test(arguments: [
        ("db_service:\n  databases:\n  - name: a\n    protocol: oracle\n    uri: h:1\n", ["db_service.databases[0].protocol", "postgres or mysql", "oracle"]),
        ("db_service:\n  databases:\n  - name: a\n    protocol: postgres\n    uri: nohost\n", ["db_service.databases[0].uri", "host:port"]),
        ("db_service:\n  databases:\n  - protocol: postgres\n    uri: h:1\n", ["db_service.databases[0]", "with a name"]),
        ("db_service:\n  databases:\n  - name: a\n    uri: h:1\n", ["db_service.databases[0]", "with a protocol"]),
        ("db_service:\n  databases:\n  - name: a b\n    protocol: postgres\n    uri: h:1\n", ["db_service.databases[0].name", "sales-db"]),
        ("db_service:\n  databases:\n  - name: a\n    protocol: postgres\n    uri: h:1\n    tls:\n      mode: strict\n",
         ["db_service.databases[0].tls.mode", "verify-full, verify-ca or insecure"]),
        ("db_service:\n  databases:\n  - name: a\n    protocol: postgres\n    uri: h:1\n    tls:\n      ca_cert_file: /nonexistent/ca.pem\n",
         ["db_service.databases[0].tls.ca_cert_file", "cannot read /nonexistent/ca.pem"]),
        ("db_service:\n  databases:\n  - name: a\n    protocol: postgres\n    uri: h:1\n    colour: red\n", ["db_service.databases[0].colour", "unknown key"]),
        ("db_service:\n  databases:\n  - name: a\n    protocol: postgres\n    uri: h:1\n  - name: a\n    protocol: postgres\n    uri: h:2\n",
         ["db_service.databases[1].name", "appears twice"]),
        ("db_service:\n  databases:\n  - name: a\n    protocol: postgres\n    uri: h:1\n    dynamic_labels:\n    - name: x\n      command: [/nonexistent/cmd]\n",
         ["dynamic_labels[0].command", "not an executable file"]),
        ("proxy_service:\n  postgres_listen_addr: nowhere:port\n", ["proxy_service.postgres_listen_addr", "host:port"]),
        ("proxy_service:\n  mysql_listen_addr: nowhere:port\n", ["proxy_service.mysql_listen_addr", "host:port"]),
    ])
    func badSectionsAreOneLine(yaml: String, fragments: [String]) throws {
        let error = try DaemonTestSupport.parseError(yaml, file: Self.file)
        #expect(error.code == .badParameter)
        #expect(!error.message.contains("\n"), "\(error.message)")
        for fragment in fragments { #expect(error.message.contains(fragment), "\(fragment) in \(error.message)") }
    }

    @Test func rolesDbNeedsDatabases() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dbcfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("teleport.yaml").path
        try "teleport:\n  data_dir: \(directory.path)\n".write(toFile: path, atomically: true, encoding: .utf8)
        var flags = StartFlags()
        flags.configPath = path
        flags.roles = "db"
        #expect(throws: TeleportError.self) { try DaemonConfig.resolve(flags: flags) }
        do {
            _ = try DaemonConfig.resolve(flags: flags)
        } catch let error as TeleportError {
            #expect(error.message.contains("db_service.databases"), "\(error.message)")
        }
        flags.roles = "db,auth,desktop"
        do {
            _ = try DaemonConfig.resolve(flags: flags)
            Issue.record("an unknown role was accepted")
        } catch let error as TeleportError {
            #expect(error.message.contains("auth, node, proxy, db"), "\(error.message)")
        }
    }

    /// `teleport db start`: the flags' database is served by the database service alone.
    @Test func dbStartFlagsServeOneDatabase() throws {
        var flags = StartFlags()
        flags.dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("dbflags-\(UUID().uuidString)").path
        var database = DatabaseFlags(name: "pg", protocol: "postgres", uri: "localhost:5432")
        database.labels = "env=dev,team=data"
        database.description = "Sales"
        flags.database = database
        let config = try DaemonConfig.resolve(flags: flags)
        #expect(config.roleNames == ["db"])
        #expect(config.file.db.enabled)
        let entry = try #require(config.file.db.databases.first)
        #expect(config.file.db.databases.count == 1)
        #expect(entry.name == "pg" && entry.protocol == "postgres" && entry.uri == "localhost:5432" && entry.description == "Sales")
        #expect(entry.staticLabels == ["env": "dev", "team": "data"] && entry.tlsMode == "verify-full")
    }

    @Test(arguments: [
        ("bad name!", "postgres", "localhost:5432", nil, nil, ["--name", "bad name!"]),
        ("pg", "oracle", "localhost:5432", nil, nil, ["--protocol", "postgres or mysql"]),
        ("pg", "postgres", "localhost", nil, nil, ["--uri", "host:port"]),
        ("pg", "postgres", "localhost:5432", "up=[1m:\"/bin/true\"]", nil, ["--labels", "static labels"]),
        ("pg", "postgres", "localhost:5432", nil, "/nonexistent/ca.pem", ["--ca-cert-file", "/nonexistent/ca.pem"]),
    ] as [(String, String, String, String?, String?, [String])])
    func dbStartFlagsAreChecked(name: String, proto: String, uri: String, labels: String?, caCertFile: String?, fragments: [String]) throws {
        var flags = StartFlags()
        flags.dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("dbflags-\(UUID().uuidString)").path
        var database = DatabaseFlags(name: name, protocol: proto, uri: uri)
        database.labels = labels
        database.caCertFile = caCertFile
        flags.database = database
        do {
            _ = try DaemonConfig.resolve(flags: flags)
            Issue.record("accepted \(database)")
        } catch let error as TeleportError {
            #expect(error.code == .badParameter && !error.message.contains("\n"), "\(error.message)")
            for fragment in fragments { #expect(error.message.contains(fragment), "\(fragment) in \(error.message)") }
        }
    }
}
