import Foundation
import TeleportAPI
import TeleportDaemon
import Testing

/// What `FileConfig.parse` accepts and how it normalizes it.
@Suite("teleport.yaml parsing")
struct FileConfigParseTests {
    @Test("auth_service.session_recording: node and off; anything else is an error naming the choices")
    func sessionRecording() throws {
        #expect(try FileConfig.parse("auth_service:\n  session_recording: off\n", file: "t.yaml").auth.sessionRecording == "off")
        #expect(try FileConfig.parse("auth_service:\n  session_recording: node\n", file: "t.yaml").auth.sessionRecording == "node")
        #expect(throws: TeleportError.self) { _ = try FileConfig.parse("auth_service:\n  session_recording: sometimes\n", file: "t.yaml") }
    }

    @Test("auth_service.web_idle_timeout: a Go duration (default 10m when absent); zero, negative or text is an error")
    func webIdleTimeout() throws {
        #expect(try FileConfig.parse("auth_service:\n  web_idle_timeout: 45m\n", file: "t.yaml").auth.webIdleTimeout == 45 * 60)
        #expect(try FileConfig.parse("auth_service:\n  web_idle_timeout: 1h30m\n", file: "t.yaml").auth.webIdleTimeout == 5400)
        #expect(try FileConfig.parse("auth_service:\n  enabled: true\n", file: "t.yaml").auth.webIdleTimeout == nil)
        for bad in ["0s", "-5m", "soon", "10"] {
            #expect(throws: TeleportError.self, "\(bad)") {
                _ = try FileConfig.parse("auth_service:\n  web_idle_timeout: \(bad)\n", file: "t.yaml")
            }
        }
    }

    @Test(arguments: ["", "# only a comment\n", "---\n"])
    func emptyFileGivesTheDefaults(_ text: String) throws {
        let config = try FileConfig.parse(text, file: "empty.yaml")
        #expect(config == FileConfig())
        #expect(config.auth.enabled && config.ssh.enabled && config.proxy.enabled)
        #expect(config.auth.listenAddr == "0.0.0.0:3025")
        #expect(config.ssh.listenAddr == "0.0.0.0:3022")
        #expect(config.proxy.listenAddr == "0.0.0.0:3023")
        #expect(config.proxy.tunnelListenAddr == "0.0.0.0:3024")
        #expect(config.proxy.webListenAddr == "0.0.0.0:3080")
        #expect(config.teleport.storage.type == .sqlite)
        #expect(config.teleport.connectionLimits.maxConnections == 15000)
        #expect(config.teleport.connectionLimits.maxUsers == 250)
    }

    @Test func emptySectionsKeepTheDefaults() throws {
        let config = try FileConfig.parse("teleport:\nauth_service:\nssh_service: ~\nproxy_service: {}\n", file: "f")
        #expect(config == FileConfig())
    }

    @Test(arguments: [
        ("yes", true), ("no", false), ("\"yes\"", true), ("'no'", false), ("true", true), ("false", false),
        ("on", true), ("off", false), ("YES", true), ("False", false),
    ])
    func enabledAcceptsYAMLBooleans(text: String, expected: Bool) throws {
        let config = try FileConfig.parse("ssh_service:\n  enabled: \(text)\n", file: "f")
        #expect(config.ssh.enabled == expected)
    }

    @Test(arguments: [
        ("0.0.0.0:3025", "0.0.0.0:3025"),
        ("127.0.0.1", "127.0.0.1:3025"),
        ("auth.example.com", "auth.example.com:3025"),
        (":4025", "0.0.0.0:4025"),
        ("\"[::1]:4025\"", "[::1]:4025"),
        ("\"[::]\"", "[::]:3025"),
    ])
    func addressesAreNormalizedToHostPort(text: String, expected: String) throws {
        let config = try FileConfig.parse("auth_service:\n  listen_addr: \(text)\n", file: "f")
        #expect(config.auth.listenAddr == expected)
    }

    @Test func defaultPortsDependOnTheSetting() throws {
        let yaml = """
            teleport:
              auth_servers: [auth.example.com]
              diag_addr: 127.0.0.1
            ssh_service:
              listen_addr: 10.0.0.1
            proxy_service:
              listen_addr: 10.0.0.2
              web_listen_addr: 10.0.0.3
              tunnel_listen_addr: 10.0.0.4
            """
        let config = try FileConfig.parse(yaml, file: "f")
        #expect(config.teleport.authServers == ["auth.example.com:3025"])
        #expect(config.teleport.diagAddr == "127.0.0.1:3000")
        #expect(config.ssh.listenAddr == "10.0.0.1:3022")
        #expect(config.proxy.listenAddr == "10.0.0.2:3023")
        #expect(config.proxy.webListenAddr == "10.0.0.3:3080")
        #expect(config.proxy.tunnelListenAddr == "10.0.0.4:3024")
    }

    @Test func singularAuthServerAndProxyServerAreAccepted() throws {
        #expect(try FileConfig.parse("teleport:\n  auth_server: 10.1.0.5\n", file: "f").teleport.authServers == ["10.1.0.5:3025"])
        // Config v3's `proxy_server` is the proxy's web address (default port 3080), kept apart.
        let viaProxy = try FileConfig.parse("teleport:\n  proxy_server: proxy.example.com\n", file: "f").teleport
        #expect(viaProxy.proxyServer == "proxy.example.com:3080")
        #expect(viaProxy.authServers == [])
        #expect(try FileConfig.parse("teleport:\n  proxy_server: 10.1.0.7:443\n", file: "f").teleport.proxyServer == "10.1.0.7:443")
    }

    /// One port: `tunnel_listen_addr` equal to `web_listen_addr`, or `proxy_listener_mode: multiplex`.
    @Test(arguments: [
        ("proxy_service:\n  web_listen_addr: 0.0.0.0:3080\n  tunnel_listen_addr: 0.0.0.0:3080\n", true),
        ("proxy_service:\n  web_listen_addr: 0.0.0.0:443\n  tunnel_listen_addr: 0.0.0.0:443\n", true),
        ("proxy_service:\n  proxy_listener_mode: multiplex\n", true),
        ("proxy_service:\n  proxy_listener_mode: separate\n", false),
        ("proxy_service:\n  web_listen_addr: 0.0.0.0:3080\n", false),
        ("proxy_service:\n  web_listen_addr: 10.0.0.1:3080\n  tunnel_listen_addr: 10.0.0.2:3080\n", false),
    ])
    func multiplexedWebPort(yaml: String, multiplexed: Bool) throws {
        #expect(try FileConfig.parse(yaml, file: "f").proxy.multiplexed == multiplexed)
    }

    @Test func anUnknownListenerModeIsRefused() {
        #expect {
            try FileConfig.parse("proxy_service:\n  proxy_listener_mode: single\n", file: "f.yaml")
        } throws: { error in
            (error as? TeleportError)?.message.contains(
                "proxy_service.proxy_listener_mode: \"single\" is not a listener mode (use multiplex or separate)") == true
        }
    }

    @Test func aSingleStringIsAOneElementList() throws {
        let config = try FileConfig.parse(
            "teleport:\n  ca_pin: sha256:abc\n  storage:\n    audit_events_uri: file:///var/log/t\nauth_service:\n  tokens: node:xyz\n  public_addr: auth.example.com:3025\n",
            file: "f")
        #expect(config.teleport.caPins == ["sha256:abc"])
        #expect(config.teleport.storage.auditEventsURIs == ["file:///var/log/t"])
        #expect(config.auth.tokens == ["node:xyz"])
        #expect(config.auth.publicAddrs == ["auth.example.com:3025"])
    }

    @Test func disabledServicesAreOff() throws {
        let config = try FileConfig.parse("auth_service:\n  enabled: no\nproxy_service:\n  enabled: no\n", file: "f")
        #expect(!config.auth.enabled)
        #expect(!config.proxy.enabled)
        #expect(config.ssh.enabled)
    }

    @Test func postgresStorage() throws {
        let config = try FileConfig.parse(
            "teleport:\n  storage:\n    type: postgresql\n    conn_string: postgres://u@db/teleport\n    audit_sessions_uri: file:///rec\n",
            file: "f")
        #expect(config.teleport.storage.type == .postgres)
        #expect(config.teleport.storage.connString == "postgres://u@db/teleport")
        #expect(config.teleport.storage.auditSessionsURI == "file:///rec")
    }

    /// The seed's "Using etcd" sample, key for key.
    @Test func etcdStorageAsTheSeedsSample() throws {
        let yaml = """
            teleport:
              storage:
                 type: etcd
                 peers: ["https://172.17.0.1:4001", "https://172.17.0.2:4001"]
                 tls_cert_file: /var/lib/teleport/etcd-cert.pem
                 tls_key_file: /var/lib/teleport/etcd-key.pem
                 tls_ca_file: /var/lib/teleport/etcd-ca.pem
                 username: username
                 password_file: /mnt/secrets/etcd-pass
                 prefix: /teleport/
                 insecure: false
                 etcd_max_client_msg_size_bytes: 15728640
            """
        let storage = try FileConfig.parse(yaml, file: "f").teleport.storage
        #expect(storage.type == .etcd)
        #expect(storage.peers == ["https://172.17.0.1:4001", "https://172.17.0.2:4001"])
        #expect(storage.tlsCertFile == "/var/lib/teleport/etcd-cert.pem")
        #expect(storage.tlsKeyFile == "/var/lib/teleport/etcd-key.pem")
        #expect(storage.tlsCAFile == "/var/lib/teleport/etcd-ca.pem")
        #expect(storage.username == "username")
        #expect(storage.passwordFile == "/mnt/secrets/etcd-pass")
        #expect(storage.prefix == "/teleport/")
        #expect(storage.insecure == false)
        #expect(storage.etcdMaxClientMsgSizeBytes == 15_728_640)
    }

    @Test(arguments: [("debug", "DEBUG"), ("Warn", "WARN"), ("ERROR", "ERROR")])
    func severityIsUppercased(text: String, expected: String) throws {
        #expect(try FileConfig.parse("teleport:\n  log:\n    severity: \(text)\n", file: "f").teleport.log.severity == expected)
    }

    @Test func commandPeriodDefaultsToOneMinute() throws {
        let config = try FileConfig.parse("ssh_service:\n  commands:\n  - name: up\n    command: uptime\n", file: "f")
        #expect(config.ssh.commands.count == 1)
        #expect(config.ssh.commands.first?.period == 60)
        #expect(config.ssh.commands.first?.command == ["uptime"])
    }

    @Test(arguments: [("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("1m0s", 60.0)])
    func commandPeriodIsADuration(text: String, seconds: Double) throws {
        let config = try FileConfig.parse(
            "ssh_service:\n  commands:\n  - name: up\n    command: [uptime, -p]\n    period: \(text)\n", file: "f")
        #expect(config.ssh.commands.first?.period == seconds)
    }

    @Test func labelValuesAreStrings() throws {
        let config = try FileConfig.parse("ssh_service:\n  labels:\n    version: 1.0\n    prod: yes\n", file: "f")
        #expect(config.ssh.labels == ["version": "1.0", "prod": "yes"])
    }

    @Test func httpsKeyPairsAndLegacyKeyFilesCombine() throws {
        let config = try FileConfig.parse(
            """
            proxy_service:
              https_keypairs:
              - key_file: /a.key
                cert_file: /a.crt
              https_key_file: /b.key
              https_cert_file: /b.crt
            """, file: "f")
        #expect(config.proxy.httpsKeyPairs.map(\.keyFile) == ["/a.key", "/b.key"])
        #expect(config.proxy.httpsKeyPairs.map(\.certFile) == ["/a.crt", "/b.crt"])
    }

    @Test func unsupportedServicesWarnOnlyWhenEnabled() throws {
        let off = try FileConfig.parse("windows_desktop_service:\n  enabled: no\napp_service:\n  enabled: false\n", file: "f")
        #expect(off.warnings == [])
        let on = try FileConfig.parse("windows_desktop_service:\n  enabled: yes\n", file: "/x/teleport.yaml")
        #expect(on.warnings.count == 1)
        #expect(on.warnings.first?.hasPrefix("/x/teleport.yaml: windows_desktop_service ") == true, "\(on.warnings)")
    }

    @Test func kubernetesService() throws {
        let config = try FileConfig.parse(
            "kubernetes_service:\n  enabled: yes\n  listen_addr: 127.0.0.1:3027\n  kubeconfig_file: /k/config\n  kube_cluster_name: prod\n"
                + "  labels:\n    env: prod\n", file: "f")
        #expect(config.kube.enabled && config.kube.kubeconfigFile == "/k/config" && config.kube.kubeClusterName == "prod")
        #expect(config.kube.labels == ["env": "prod"] && config.kube.listenAddr == "127.0.0.1:3027" && config.kube.listenAddrConfigured)
        #expect(throws: TeleportError.self) { try FileConfig.parse("kubernetes_service:\n  enabled: yes\n", file: "f") }
        #expect(throws: TeleportError.self) {
            try FileConfig.parse("kubernetes_service:\n  kubeconfig_file: /k\n  kube_cluster_name: 'bad name'\n", file: "f")
        }
        #expect(throws: TeleportError.self) { try FileConfig.parse("kubernetes_service:\n  kubeconfig: /k\n", file: "f") }
        // The seed's proxy_service.kubernetes (Teleport 3/4).
        let seed = try FileConfig.parse(
            "proxy_service:\n  kubernetes:\n    enabled: yes\n    listen_addr: 127.0.0.1:3026\n    kubeconfig_file: /k/config\n"
                + "    public_addr: [k8s.example.com:3026]\n", file: "f")
        #expect(seed.proxy.kubeListenAddr == "127.0.0.1:3026" && seed.proxy.kubernetesKubeconfigFile == "/k/config")
        #expect(seed.warnings.contains { $0.contains("public_addr") }, "\(seed.warnings)")
        let off = try FileConfig.parse("proxy_service:\n  kubernetes:\n    enabled: no\n    kubeconfig_file: /k\n", file: "f")
        #expect(off.proxy.kubeListenAddr == nil && off.proxy.kubernetesKubeconfigFile == nil)
        let defaultPort = try FileConfig.parse("proxy_service:\n  kubernetes:\n    enabled: yes\n", file: "f")
        #expect(defaultPort.proxy.kubeListenAddr == "0.0.0.0:3026")
        #expect(throws: TeleportError.self) { try FileConfig.parse("proxy_service:\n  kubernetes:\n    enabeld: yes\n", file: "f") }
        // commands: dynamic labels, checked as ssh_service.commands are.
        let dynamic = try FileConfig.parse(
            "kubernetes_service:\n  kubeconfig_file: /k\n  commands:\n  - name: arch\n    command: [\"/bin/uname\", \"-m\"]\n    period: 2m\n",
            file: "f")
        #expect(dynamic.kube.commands.map(\.name) == ["arch"] && dynamic.kube.commands.first?.command == ["/bin/uname", "-m"])
        #expect(dynamic.kube.commands.first?.period == 120)
        #expect(throws: TeleportError.self) {
            try FileConfig.parse("kubernetes_service:\n  kubeconfig_file: /k\n  commands:\n  - name: arch\n    command: [\"/no/such/program\"]\n", file: "f")
        }
    }

    @Test(arguments: [
        ("teleport:\n  cache:\n    enabled: no\n", "teleport.cache.enabled"),
        ("teleport:\n  log:\n    format: json\n", "teleport.log.format"),
        ("teleport:\n  connection_limits:\n    rates:\n    - period: 1m\n      average: 10\n", "teleport.connection_limits.rates"),
        ("teleport:\n  storage:\n    table_name: t\n", "teleport.storage.table_name"),
        ("auth_service:\n  license_file: /l.pem\n", "auth_service.license_file"),
        ("auth_service:\n  session_recording: proxy\n", "auth_service.session_recording"),
        ("ssh_service:\n  pam:\n    enabled: no\n", "ssh_service.pam"),
        ("proxy_service:\n  kubernetes:\n    enabled: yes\n    public_addr: k8s.example.com\n", "proxy_service.kubernetes.public_addr"),
    ])
    func documentedButUnsupportedKeysWarn(yaml: String, key: String) throws {
        let config = try FileConfig.parse(yaml, file: "t.yaml")
        #expect(config.warnings.count == 1)
        #expect(config.warnings.first?.hasPrefix("t.yaml: \(key) is accepted but") == true, "\(config.warnings)")
    }

    /// `storage.region`: the default region of `s3://` session recordings.
    @Test func storageRegionIsKept() throws {
        let config = try FileConfig.parse("teleport:\n  storage:\n    region: eu-west-1\n    audit_sessions_uri: s3://b/r\n", file: "t.yaml")
        #expect(config.teleport.storage.region == "eu-west-1" && config.warnings.isEmpty, "\(config.warnings)")
    }

    @Test func versionKeyIsAccepted() throws {
        #expect(try FileConfig.parse("version: v3\nteleport:\n  nodename: x\n", file: "f").teleport.nodeName == "x")
    }

    /// Connection limits are counts: a negative one makes no sense.
    @Test
    func negativeConnectionLimitIsRefused() throws {
        let error = try DaemonTestSupport.parseError("teleport:\n  connection_limits:\n    max_connections: -1\n")
        #expect(error.message.contains("teleport.connection_limits.max_connections"))
    }
}

/// A key written without a value (`data_dir:`), as left behind when a value is commented out.
@Suite("teleport.yaml keys without a value")
struct FileConfigNullValueTests {
    @Test(
        arguments: ["teleport:\n  data_dir:\n", "teleport:\n  data_dir: ~\n", "teleport:\n  data_dir: null\n"])
    func aNullDataDirIsNotTheEmptyString(yaml: String) throws {
        // Either the key is treated as absent (the default is used) or it is refused; never "".
        if let config = try? FileConfig.parse(yaml, file: "f") {
            #expect(config.teleport.dataDir == nil)
        } else {
            let error = try DaemonTestSupport.parseError(yaml, file: "f")
            #expect(error.message.contains("teleport.data_dir"))
        }
    }

    @Test
    func aNullDataDirDoesNotResolveToTheWorkingDirectory() throws {
        let flags = try DaemonTestSupport.flags(config: "teleport:\n  data_dir:\n")
        guard let config = try? DaemonConfig.resolve(flags: flags) else { return }  // refusing it is fine too
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).standardizedFileURL
        #expect(config.dataDir.standardizedFileURL != cwd)
    }
}
