import Foundation
import TeleportAPI
import TeleportDaemon
import Testing

/// `app_service` in teleport.yaml: a good section parses into its entries; each bad one is one
/// line naming the key and the fix; the cloud metadata address is refused.
@Suite("app_service configuration")
struct AppServiceConfigTests {
    static let file = "/etc/teleport/app.yaml"

    @Test func anAppSectionParses() throws {
        let yaml = """
            app_service:
              enabled: true
              listen_addr: 127.0.0.1:3031
              apps:
              - name: grafana
                description: Dashboards
                uri: http://localhost:3000
                public_addr: grafana.example.com
                labels:
                  env: prod
                insecure_skip_verify: true
                rewrite:
                  redirect: [grafana.internal]
                  headers:
                  - name: X-Env
                    value: prod
              - name: wiki
                uri: https://wiki.internal

            """
        let config = try FileConfig.parse(yaml, file: Self.file)
        #expect(config.app.enabled && config.app.listenAddr == "127.0.0.1:3031")
        #expect(config.app.apps.map(\.name) == ["grafana", "wiki"])
        let grafana = config.app.apps[0]
        #expect(grafana.publicAddr == "grafana.example.com" && grafana.labels == ["env": "prod"] && grafana.insecureSkipVerify)
        #expect(grafana.redirect == ["grafana.internal"] && grafana.headers == [["X-Env", "prod"]])
        #expect(config.app.apps[1].publicAddr == nil && !config.app.apps[1].insecureSkipVerify)
        #expect(!FileConfig().app.enabled, "off by default")
    }

    @Test(arguments: [
        ("app_service:\n  apps:\n  - name: meta\n    uri: http://169.254.169.254/latest\n", ["app_service.apps[0].uri", "cloud metadata address"]),
        ("app_service:\n  apps:\n  - name: a\n    uri: ftp://localhost:21\n", ["app_service.apps[0].uri", "not supported"]),
        ("app_service:\n  apps:\n  - name: a\n    uri: tcp://localhost\n", ["app_service.apps[0].uri", "tcp://HOST:PORT"]),
        ("app_service:\n  apps:\n  - name: a\n    uri: localhost:3000\n", ["app_service.apps[0].uri", "http://localhost:3000"]),
        ("app_service:\n  apps:\n  - uri: http://h\n", ["app_service.apps[0]", "with a name"]),
        ("app_service:\n  apps:\n  - name: a\n", ["app_service.apps[0]", "with a uri"]),
        ("app_service:\n  apps:\n  - name: Bad_Name\n    uri: http://h\n", ["app_service.apps[0].name", "DNS label"]),
        ("app_service:\n  apps:\n  - name: a\n    uri: http://h\n    public_addr: https://a.example.com\n", ["public_addr", "without scheme or port"]),
        ("app_service:\n  apps:\n  - name: a\n    uri: http://h\n    rewrite:\n      headers:\n      - name: X-Forwarded-For\n        value: x\n",
         ["rewrite.headers", "Teleport sets itself"]),
        ("app_service:\n  apps:\n  - name: a\n    uri: http://h\n    colour: red\n", ["app_service.apps[0].colour", "unknown key"]),
        ("app_service:\n  apps:\n  - name: a\n    uri: http://h\n  - name: a\n    uri: http://g\n", ["app_service.apps[1].name", "appears twice"]),
        ("app_service:\n  listen_addr: nowhere:port\n", ["app_service.listen_addr", "host:port"]),
    ])
    func badSectionsAreOneLine(yaml: String, fragments: [String]) throws {
        let error = try DaemonTestSupport.parseError(yaml, file: Self.file)
        #expect(error.code == .badParameter)
        #expect(!error.message.contains("\n"), "one line: \(error.message)")
        for fragment in fragments {
            #expect(error.message.contains(fragment), "\(fragment) in \(error.message)")
        }
    }

    @Test(arguments: [
        ("teleport:\n  auth_servers: [auth.example.com:3025]\n", "http://auth.example.com:3025", "teleport.auth_servers[0]"),
        ("teleport:\n  auth_servers: [127.0.0.1:3025]\n", "https://localhost:3025", "teleport.auth_servers[0]"),
        ("auth_service:\n  listen_addr: 0.0.0.0:4025\n", "http://127.0.0.1:4025/", "auth_service.listen_addr"),
        ("proxy_service:\n  web_listen_addr: 127.0.0.1:4080\n", "tcp://localhost:4080", "proxy_service.web_listen_addr"),
        ("", "http://127.0.0.1:3031", "app_service.listen_addr"),
    ])
    func appsAtTeleportsOwnAddressesAreRefused(section: String, uri: String, key: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("appcfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("teleport.yaml").path
        var yaml = section.hasPrefix("teleport:") ? section + "  data_dir: \(directory.path)\n" : "teleport:\n  data_dir: \(directory.path)\n" + section
        yaml += "app_service:\n  enabled: true\n  apps:\n  - name: pivot\n    uri: \(uri)\n"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        var flags = StartFlags()
        flags.configPath = path
        do {
            _ = try DaemonConfig.resolve(flags: flags)
            Issue.record("an app at \(uri) was accepted")
        } catch let error as TeleportError {
            #expect(error.code == .badParameter && error.message.contains("app_service.apps[0].uri") && error.message.contains(key), "\(error.message)")
        }
        // Another port on the same host is the app's own.
        try yaml.replacingOccurrences(of: uri, with: "http://127.0.0.1:8080").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: Never.self) { _ = try DaemonConfig.resolve(flags: flags) }
    }

    @Test func rolesAppNeedsApps() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("appcfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("teleport.yaml").path
        try "teleport:\n  data_dir: \(directory.path)\n".write(toFile: path, atomically: true, encoding: .utf8)
        var flags = StartFlags()
        flags.configPath = path
        flags.roles = "app"
        do {
            _ = try DaemonConfig.resolve(flags: flags)
            Issue.record("--roles=app without apps was accepted")
        } catch let error as TeleportError {
            #expect(error.message.contains("app_service.apps"), "\(error.message)")
        }
        try "teleport:\n  data_dir: \(directory.path)\napp_service:\n  apps:\n  - name: grafana\n    uri: http://localhost:3000\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let config = try DaemonConfig.resolve(flags: flags)
        #expect(config.runApp && !config.runAuth && !config.runProxy && config.roleNames == ["app"])
    }
}
