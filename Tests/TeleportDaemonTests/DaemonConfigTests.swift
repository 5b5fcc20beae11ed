import Foundation
import TeleportAPI
import TeleportDaemon
import Testing

/// `teleport start`: the file, then flags, then defaults.
@Suite("DaemonConfig.resolve")
struct DaemonConfigTests {
    @Test func withoutSettingsTheThreeServicesRun() throws {
        let config = try DaemonConfig.resolve(flags: DaemonTestSupport.flags())
        #expect(config.runAuth && config.runProxy && config.runNode)
        #expect(config.roleNames == ["auth", "proxy", "node"])
        #expect(config.file.auth.listenAddr == "0.0.0.0:3025")
        #expect(config.authServers == [])
        #expect(config.token == nil)
        #expect(config.dataDir == DaemonConfig.defaultDataDir().standardizedFileURL)
        #expect(!config.nodeName.isEmpty)
        #expect(!config.nodeName.contains("."), "the short host name")
    }

    /// Without `--config` and without /etc/teleport.yaml, the defaults are used.
    @Test(.enabled(if: !FileManager.default.fileExists(atPath: DaemonConfig.defaultConfigPath)))
    func withoutAConfigFileTheThreeServicesRun() throws {
        let config = try DaemonConfig.resolve(flags: StartFlags())
        #expect(config.configPath == nil)
        #expect(config.roleNames == ["auth", "proxy", "node"])
        #expect(config.file == FileConfig())
    }

    @Test func theConfigPathIsRemembered() throws {
        let flags = try DaemonTestSupport.flags()
        let config = try DaemonConfig.resolve(flags: flags)
        #expect(config.configPath == flags.configPath)
    }

    @Test(arguments: [
        ("node", ["node"]),
        ("auth", ["auth"]),
        ("proxy,node", ["proxy", "node"]),
        ("Auth, Proxy", ["auth", "proxy"]),
        ("node,auth,proxy", ["auth", "proxy", "node"]),
    ])
    func rolesSelectServices(roles: String, expected: [String]) throws {
        let config = try DaemonConfig.resolve(flags: DaemonTestSupport.flags { $0.roles = roles })
        #expect(config.roleNames == expected)
    }

    @Test func rolesOverrideTheFile() throws {
        let flags = try DaemonTestSupport.flags(config: "ssh_service:\n  enabled: no\n") { $0.roles = "node" }
        let config = try DaemonConfig.resolve(flags: flags)
        #expect(config.roleNames == ["node"])
    }

    @Test func theFileDisablesServices() throws {
        let flags = try DaemonTestSupport.flags(config: "auth_service:\n  enabled: no\nproxy_service:\n  enabled: no\n")
        #expect(try DaemonConfig.resolve(flags: flags).roleNames == ["node"])
    }

    @Test(arguments: ["bogus", "node,bogus", "", ","])
    func badRolesAreRefused(roles: String) throws {
        let flags = try DaemonTestSupport.flags { $0.roles = roles }
        let error = #expect(throws: TeleportError.self) { try DaemonConfig.resolve(flags: flags) }
        #expect(error?.code == .badParameter)
        #expect(error?.message.contains("--roles") == true, "\(String(describing: error))")
    }

    @Test func unknownRoleIsNamed() throws {
        let flags = try DaemonTestSupport.flags { $0.roles = "node,bogus" }
        let error = #expect(throws: TeleportError.self) { try DaemonConfig.resolve(flags: flags) }
        #expect(error?.message.contains("\"bogus\"") == true)
    }

    /// `TELEPORT_UNSTABLE_TUNNEL_KEEPALIVE` (tests only): whole seconds from 1 to 3600, else a
    /// one-line error naming the variable; unset or empty keeps the default.
    @Test(arguments: [("5", 5), ("1", 1), ("3600", 3600), ("", nil), (nil, nil)] as [(String?, Int?)])
    func tunnelKeepaliveFromTheEnvironment(value: String?, seconds: Int?) throws {
        let environment = value.map { [DaemonConfig.tunnelKeepaliveVariable: $0] } ?? [:]
        #expect(try DaemonConfig.tunnelKeepalive(environment: environment) == seconds.map { .seconds($0) })
    }

    @Test(arguments: ["0", "-1", "0.5", "1s", "3601", "x"])
    func badTunnelKeepaliveIsRefused(value: String) throws {
        let error = #expect(throws: TeleportError.self) {
            try DaemonConfig.tunnelKeepalive(environment: [DaemonConfig.tunnelKeepaliveVariable: value])
        }
        #expect(error?.code == .badParameter)
        #expect(error?.message.contains("TELEPORT_UNSTABLE_TUNNEL_KEEPALIVE: \"\(value)\"") == true, "\(String(describing: error))")
    }

    @Test func allServicesDisabledIsAnError() throws {
        let flags = try DaemonTestSupport.flags(
            config: "auth_service:\n  enabled: no\nproxy_service:\n  enabled: no\nssh_service:\n  enabled: no\n")
        let error = #expect(throws: TeleportError.self) { try DaemonConfig.resolve(flags: flags) }
        #expect(error?.code == .badParameter)
        #expect(error?.message.contains("no service is enabled") == true)
    }

    @Test func listenIPRebindsEveryListener() throws {
        let flags = try DaemonTestSupport.flags(config: "ssh_service:\n  listen_addr: 0.0.0.0:4022\n") { $0.listenIP = "10.0.0.7" }
        let file = try DaemonConfig.resolve(flags: flags).file
        #expect(file.auth.listenAddr == "10.0.0.7:3025")
        #expect(file.ssh.listenAddr == "10.0.0.7:4022", "the port of the file is kept")
        #expect(file.proxy.listenAddr == "10.0.0.7:3023")
        #expect(file.proxy.webListenAddr == "10.0.0.7:3080")
        #expect(file.proxy.tunnelListenAddr == "10.0.0.7:3024")
    }

    @Test func listenIPv6IsBracketed() throws {
        let flags = try DaemonTestSupport.flags(config: "auth_service:\n  listen_addr: \"[::]:3025\"\n") { $0.listenIP = "::1" }
        let file = try DaemonConfig.resolve(flags: flags).file
        #expect(file.auth.listenAddr == "[::1]:3025")
        #expect(file.ssh.listenAddr == "[::1]:3022")
    }

    @Test(arguments: ["", "10.0.0.0/8", "10.0.0.1 "])
    func badListenIPIsRefused(ip: String) throws {
        let flags = try DaemonTestSupport.flags { $0.listenIP = ip }
        let error = #expect(throws: TeleportError.self) { try DaemonConfig.resolve(flags: flags) }
        #expect(error?.code == .badParameter)
        #expect(error?.message.contains("--listen-ip") == true)
    }

    @Test func labelsFlagAddsStaticAndDynamicLabels() throws {
        let flags = try DaemonTestSupport.flags(config: "ssh_service:\n  labels:\n    env: test\n    team: ops\n") {
            $0.labels = #"env=prod,uptime=[1m:"uptime -p"]"#
        }
        let ssh = try DaemonConfig.resolve(flags: flags).file.ssh
        #expect(ssh.labels == ["env": "prod", "team": "ops"], "the flag wins over the file")
        try #require(ssh.commands.count == 1)
        #expect(ssh.commands[0].name == "uptime")
        #expect(ssh.commands[0].period == 60)
        #expect(ssh.commands[0].command == ["uptime", "-p"])
    }

    @Test(arguments: [
        ("10.1.0.5", ["10.1.0.5:3025"]),
        ("10.1.0.5:3080", ["10.1.0.5:3080"]),
        ("auth.example.com", ["auth.example.com:3025"]),
        ("10.1.0.5:3025,10.1.0.6", ["10.1.0.5:3025", "10.1.0.6:3025"]),
    ])
    func authServerFlag(flag: String, expected: [String]) throws {
        let flags = try DaemonTestSupport.flags(config: "teleport:\n  auth_servers: [file.example.com:3025]\n") {
            $0.authServer = flag
        }
        #expect(try DaemonConfig.resolve(flags: flags).authServers == expected)
    }

    @Test func authServersComeFromTheFileWithoutTheFlag() throws {
        let flags = try DaemonTestSupport.flags(config: "teleport:\n  auth_servers: [10.1.0.5, 10.1.0.6:4025]\n")
        #expect(try DaemonConfig.resolve(flags: flags).authServers == ["10.1.0.5:3025", "10.1.0.6:4025"])
    }

    /// `teleport.proxy_server` stands for the auth server when none is given: auth calls go
    /// through the proxy's web port.
    @Test func proxyServerIsTheAuthAddressWithoutAuthServers() throws {
        let viaProxy = try DaemonTestSupport.flags(config: "teleport:\n  proxy_server: proxy.example.com\n")
        #expect(try DaemonConfig.resolve(flags: viaProxy).authServers == ["proxy.example.com:3080"])
        let both = try DaemonTestSupport.flags(config: "teleport:\n  proxy_server: proxy.example.com\n  auth_servers: [10.1.0.5]\n")
        #expect(try DaemonConfig.resolve(flags: both).authServers == ["10.1.0.5:3025"])
    }

    /// An IPv6 auth server keeps its brackets, as the same address in the file does.
    @Test
    func authServerFlagKeepsIPv6Brackets() throws {
        let flags = try DaemonTestSupport.flags { $0.authServer = "[::1]:3025" }
        #expect(try DaemonConfig.resolve(flags: flags).authServers == ["[::1]:3025"])
    }

    @Test(arguments: ["10.1.0.5:port", "10.1.0.5:70000", "a b"])
    func badAuthServerFlagIsRefused(flag: String) throws {
        let flags = try DaemonTestSupport.flags { $0.authServer = flag }
        let error = #expect(throws: TeleportError.self) { try DaemonConfig.resolve(flags: flags) }
        #expect(error?.code == .badParameter)
        #expect(error?.message.contains("--auth-server") == true)
    }

    @Test func flagsOverrideTheFile() throws {
        let yaml = """
            teleport:
              nodename: from-file
              data_dir: /var/lib/from-file
              auth_token: file-token
              ca_pin: sha256:file
              advertise_ip: 10.0.0.1
              pid_file: /run/file.pid
            """
        let bootstrap = try DaemonTestSupport.writeTemporaryConfig("")
        let flags = try DaemonTestSupport.flags(config: yaml) {
            $0.nodeName = "from-flag"
            $0.dataDir = "/tmp/from-flag"
            $0.token = "flag-token"
            $0.caPin = "sha256:flag"
            $0.advertiseIP = "10.0.0.2"
            $0.pidFile = "/run/flag.pid"
            $0.diagAddr = "127.0.0.1"
            $0.debug = true
            $0.bootstrap = bootstrap
        }
        let config = try DaemonConfig.resolve(flags: flags)
        #expect(config.nodeName == "from-flag")
        #expect(config.dataDir.path == "/tmp/from-flag")
        #expect(config.token == "flag-token")
        #expect(config.caPins == ["sha256:flag"])
        #expect(config.advertiseIP == "10.0.0.2")
        #expect(config.pidFile == "/run/flag.pid")
        #expect(config.diagAddr == "127.0.0.1:3000")
        #expect(config.debug)
        #expect(config.bootstrapPath == bootstrap)
    }

    @Test func fileValuesApplyWithoutFlags() throws {
        let yaml = """
            teleport:
              nodename: from-file
              data_dir: /var/lib/from-file/../teleport
              auth_token: file-token
              ca_pin: [sha256:a, sha256:b]
              advertise_ip: 10.0.0.1
              diag_addr: 127.0.0.1:3434
            """
        let config = try DaemonConfig.resolve(flags: DaemonTestSupport.flags(config: yaml))
        #expect(config.nodeName == "from-file")
        #expect(config.dataDir.path == "/var/lib/teleport", "standardized")
        #expect(config.token == "file-token")
        #expect(config.caPins == ["sha256:a", "sha256:b"])
        #expect(config.advertiseIP == "10.0.0.1")
        #expect(config.diagAddr == "127.0.0.1:3434")
        #expect(!config.debug)
    }

    @Test func relativeDataDirIsRelativeToTheWorkingDirectory() throws {
        let config = try DaemonConfig.resolve(flags: DaemonTestSupport.flags(config: "teleport:\n  data_dir: fresh\n"))
        let expected = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("fresh")
        #expect(config.dataDir.standardizedFileURL.path == expected.standardizedFileURL.path)
    }

    @Test func aBadConfigFileFailsTheResolve() throws {
        let flags = try DaemonTestSupport.flags(config: "auth_service:\n  listen_adr: x\n")
        let error = #expect(throws: TeleportError.self) { try DaemonConfig.resolve(flags: flags) }
        #expect(error?.code == .badParameter)
        #expect(error?.message.contains(flags.configPath ?? "?") == true)
        #expect(error?.message.contains("auth_service.listen_adr") == true)
    }

    @Test func aMissingConfigFileIsNotFound() throws {
        var flags = StartFlags()
        flags.configPath = "/nonexistent-\(UUID().uuidString).yaml"
        let error = #expect(throws: TeleportError.self) { try DaemonConfig.resolve(flags: flags) }
        #expect(error?.code == .notFound)
    }
}
