import Foundation
import TeleportAPI
import TeleportDaemon
import TeleportTestSupport
import Testing

/// Values that used to pass the parser and fail only once the cluster was running (issue 13,
/// item 11): every one is refused at parse time, by a one-line error naming its key.
@Suite("teleport.yaml values checked at parse time")
struct ConfigValidationTests {
    static let file = "/etc/teleport/values.yaml"

    /// One bad value and the parts its error message must hold.
    struct BadValue: CustomTestStringConvertible, Sendable {
        var name: String
        var yaml: String
        var fragments: [String]
        var testDescription: String { name }
    }

    static let badValues: [BadValue] = [
        BadValue(
            name: "a period of 0s", yaml: "ssh_service:\n  commands:\n  - name: up\n    command: [uptime]\n    period: 0s\n",
            fragments: ["ssh_service.commands[0].period", "a duration of at least 1s", "\"0s\""]),
        BadValue(
            name: "a period of 500ms", yaml: "ssh_service:\n  commands:\n  - name: up\n    command: [uptime]\n    period: 500ms\n",
            fragments: ["ssh_service.commands[0].period", "a duration of at least 1s", "\"500ms\""]),
        BadValue(
            name: "a command that does not exist",
            yaml: "ssh_service:\n  commands:\n  - name: up\n    command: [no-such-program-xyz, -p]\n    period: 1m\n",
            fragments: ["ssh_service.commands[0].command", "\"no-such-program-xyz\"", "not an executable", "full path"]),
        BadValue(
            name: "a command path that does not exist",
            yaml: "ssh_service:\n  commands:\n  - name: up\n    command: [/nonexistent/bin/uptime]\n",
            fragments: ["ssh_service.commands[0].command", "/nonexistent/bin/uptime", "not an executable"]),
        BadValue(
            name: "a command that is a directory", yaml: "ssh_service:\n  commands:\n  - name: up\n    command: [/usr/bin]\n",
            fragments: ["ssh_service.commands[0].command", "\"/usr/bin\"", "not an executable"]),
        BadValue(
            name: "authentication type saml", yaml: "auth_service:\n  authentication:\n    type: saml\n",
            fragments: ["auth_service.authentication.type", "saml is not supported", "local, github or oidc"]),
        BadValue(
            name: "local_auth not a boolean", yaml: "auth_service:\n  authentication:\n    local_auth: sometimes\n",
            fragments: ["auth_service.authentication.local_auth"]),
        BadValue(
            name: "connector_name not a name", yaml: "auth_service:\n  authentication:\n    connector_name: \"a b\"\n",
            fragments: ["auth_service.authentication.connector_name", "connector"]),
        BadValue(
            name: "second_factor: u2f", yaml: "auth_service:\n  authentication:\n    second_factor: u2f\n",
            fragments: ["auth_service.authentication.second_factor", "\"u2f\" is not supported", "use otp or off"]),
        BadValue(
            name: "second_factor: webauthn", yaml: "auth_service:\n  authentication:\n    second_factor: webauthn\n",
            fragments: ["auth_service.authentication.second_factor", "\"webauthn\" is not supported", "use otp or off"]),
        BadValue(
            name: "second_factor: optional", yaml: "auth_service:\n  authentication:\n    second_factor: optional\n",
            fragments: ["auth_service.authentication.second_factor", "\"optional\" is not supported", "use otp or off"]),
    ]

    @Test(arguments: badValues)
    func badValueIsNamedByItsKey(_ input: BadValue) throws {
        let error = try DaemonTestSupport.parseError(input.yaml, file: Self.file)
        #expect(error.code == .badParameter)
        #expect(error.message.hasPrefix("\(Self.file): "), "\(error.message)")
        for fragment in input.fragments {
            #expect(error.message.contains(fragment), "\"\(fragment)\" missing from: \(error.message)")
        }
        #expect(!error.message.contains("\n"), "one line: \(error.message)")
    }

    /// Listen addresses whose host cannot be bound here, refused by `DaemonConfig.resolve` (before
    /// the data directory is opened), naming the file and the key.
    @Test(arguments: [
        ("auth_service:\n  listen_addr: notaport\n", "auth_service.listen_addr", "\"notaport:3025\"", "0.0.0.0:3025"),
        ("ssh_service:\n  listen_addr: no-such-host.invalid:3022\n", "ssh_service.listen_addr", "no-such-host.invalid:3022", "0.0.0.0:3022"),
        ("proxy_service:\n  listen_addr: nohost.invalid\n", "proxy_service.listen_addr", "nohost.invalid:3023", "0.0.0.0:3023"),
        ("proxy_service:\n  web_listen_addr: nohost.invalid:3080\n", "proxy_service.web_listen_addr", "nohost.invalid:3080", "0.0.0.0:3080"),
        ("proxy_service:\n  tunnel_listen_addr: nohost.invalid:3024\n", "proxy_service.tunnel_listen_addr", "nohost.invalid", "0.0.0.0:3024"),
        ("teleport:\n  diag_addr: nohost.invalid:3000\n", "teleport.diag_addr", "nohost.invalid:3000", "0.0.0.0:3000"),
    ])
    func unbindableListenAddressIsNamed(yaml: String, key: String, value: String, example: String) throws {
        let flags = try DaemonTestSupport.flags(config: yaml)
        let error = #expect(throws: TeleportError.self) { try DaemonConfig.resolve(flags: flags) }
        let message = error?.message ?? ""
        #expect(error?.code == .badParameter)
        for fragment in [flags.configPath ?? "-", key, value, "is not an address to listen on", example] {
            #expect(message.contains(fragment), "\"\(fragment)\" missing from: \(message)")
        }
        #expect(!message.contains("\n"))
    }

    /// What stays accepted: IP literals (v4, v6, any), `localhost`, a host-less `:port`, names this
    /// host resolves, commands by full path or on PATH, periods of a second or more, `on` as OTP.
    @Test(arguments: [
        "auth_service:\n  listen_addr: 127.0.0.1:3025\n",
        "auth_service:\n  listen_addr: \"[::1]:3025\"\n",
        "auth_service:\n  listen_addr: 0.0.0.0\n",
        "auth_service:\n  listen_addr: localhost:3025\n",
        "auth_service:\n  listen_addr: \":3025\"\n",
        "ssh_service:\n  commands:\n  - name: up\n    command: [uptime, -p]\n    period: 1s\n",
        "ssh_service:\n  commands:\n  - name: up\n    command: [/usr/bin/uptime]\n    period: 10s\n",
    ])
    func goodValuesAreAccepted(_ yaml: String) throws {
        _ = try FileConfig.parse(yaml, file: Self.file)
        _ = try DaemonConfig.resolve(flags: try DaemonTestSupport.flags(config: yaml))
    }

    @Test("authentication: type, connector_name and local_auth are read")
    func ssoAuthentication() throws {
        let config = try FileConfig.parse(
            "auth_service:\n  authentication:\n    type: oidc\n    connector_name: okta\n    local_auth: false\n    second_factor: off\n", file: Self.file)
        #expect(config.auth.authenticationType == "oidc" && config.auth.connectorName == "okta" && !config.auth.localAuth)
        #expect(try FileConfig.parse("auth_service:\n  enabled: true\n", file: Self.file).auth.localAuth)
    }

    @Test func secondFactorOnMeansOTP() throws {
        let config = try FileConfig.parse("auth_service:\n  authentication:\n    second_factor: on\n", file: Self.file)
        #expect(config.auth.secondFactor == "otp")
    }

    /// One bad flag and the parts its error message must hold.
    struct BadFlag: CustomTestStringConvertible, Sendable {
        var name: String
        var configure: @Sendable (inout StartFlags) -> Void
        var fragments: [String]
        var testDescription: String { name }
    }

    static let badFlags: [BadFlag] = [
        BadFlag(name: "--labels period 0s", configure: { $0.labels = "up=[0s:\"uptime -p\"]" }, fragments: ["--labels", "up", "at least 1s"]),
        BadFlag(
            name: "--labels unknown program", configure: { $0.labels = "up=[1m:\"no-such-program-xyz\"]" },
            fragments: ["--labels", "no-such-program-xyz", "not an executable"]),
        BadFlag(
            name: "--diag-addr unknown host", configure: { $0.diagAddr = "nohost.invalid:3000" },
            fragments: ["--diag-addr", "not an address to listen on"]),
        BadFlag(name: "--listen-ip unknown host", configure: { $0.listenIP = "nohost.invalid" }, fragments: ["--listen-ip", "not an IP address"]),
        BadFlag(
            name: "--bootstrap missing file", configure: { $0.bootstrap = "/nonexistent/bootstrap.yaml" },
            fragments: ["--bootstrap", "cannot read"]),
    ]

    /// The same checks for flags, named by the flag.
    @Test(arguments: badFlags)
    func badFlagIsNamed(_ input: BadFlag) throws {
        let flags = try DaemonTestSupport.flags(config: "teleport:\n  nodename: a\n", input.configure)
        let error = #expect(throws: TeleportError.self) { try DaemonConfig.resolve(flags: flags) }
        for fragment in input.fragments {
            #expect(error?.message.contains(fragment) == true, "\"\(fragment)\" missing from: \(String(describing: error?.message))")
        }
    }

    /// Files and URIs that used to be found wanting only after the data directory was opened.
    @Test(arguments: [
        (
            "proxy_service:\n  https_keypairs:\n  - key_file: /nonexistent/key.pem\n    cert_file: /etc/hostname\n",
            ["proxy_service.https_keypairs[0].key_file", "cannot read /nonexistent/key.pem"]
        ),
        ("teleport:\n  storage:\n    audit_events_uri: [\"dynamodb://events\"]\n", ["teleport.storage.audit_events_uri", "dynamodb://events", "file:///path, postgresql://", "or stdout://"]),
        ("teleport:\n  storage:\n    type: etcd\n", ["teleport.storage.peers is missing"]),
        ("teleport:\n  storage:\n    audit_sessions_uri: \"s3://b/r?endpoint=ftp://x\"\n", ["teleport.storage.audit_sessions_uri", "endpoint=ftp://x is not http(s)"]),
        ("teleport:\n  storage:\n    audit_sessions_uri: \"s3://b/r?color=blue\"\n", ["teleport.storage.audit_sessions_uri", "unknown parameter color"]),
        ("teleport:\n  storage:\n    audit_sessions_uri: \"gs://b/r\"\n", ["teleport.storage.audit_sessions_uri", "gs://b/r is not supported", "s3://"]),
        (
            "teleport:\n  storage:\n    type: etcd\n    peers: [\"https://127.0.0.1:2379\"]\n    tls_cert_file: /nonexistent/c.pem\n    tls_key_file: /etc/hostname\n",
            ["teleport.storage.tls_cert_file", "cannot read /nonexistent/c.pem"]
        ),
        (
            "teleport:\n  storage:\n    type: etcd\n    peers: [\"https://127.0.0.1:2379\"]\n    username: u\n    password_file: /nonexistent/pass\n",
            ["teleport.storage.password_file", "cannot read /nonexistent/pass"]
        ),
        ("teleport:\n  storage:\n    type: etcd\n    peers: [\"http://127.0.0.1:2379\"]\n    username: u\n    password_file: /etc/hostname\n", ["in the clear", "https://"]),
    ])
    func unusableFilesAndURIsAreNamed(yaml: String, fragments: [String]) throws {
        let flags = try DaemonTestSupport.flags(config: yaml)
        let error = #expect(throws: TeleportError.self) { try DaemonConfig.resolve(flags: flags) }
        for fragment in [flags.configPath ?? "-"] + fragments {
            #expect(error?.message.contains(fragment) == true, "\"\(fragment)\" missing from: \(String(describing: error?.message))")
        }
    }

    /// A PostgreSQL backend without a usable conn_string is refused before the data directory is
    /// created, naming the key and the fix.
    @Test(arguments: [
        ("type: postgresql\n", ["teleport.storage.conn_string is missing", "postgresql://"]),
        ("type: postgres\n    conn_string: mysql://db/x\n", ["conn_string", "is not a postgresql:// URL"]),
        (
            "type: postgresql\n    conn_string: postgresql://teleport@db/tb?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem\n",
            ["sslrootcert=/nonexistent/ca.pem cannot be read"]
        ),
        ("type: postgresql\n    conn_string: postgresql://teleport@db/tb?sslmode=verify-full\n", ["needs sslrootcert"]),
    ])
    func postgresStorageIsCheckedBeforeStart(storage: String, fragments: [String]) throws {
        let flags = try DaemonTestSupport.flags(config: "teleport:\n  storage:\n    " + storage)
        let error = #expect(throws: TeleportError.self) { try DaemonConfig.resolve(flags: flags) }
        for fragment in fragments {
            #expect(error?.message.contains(fragment) == true, "\"\(fragment)\" missing from: \(String(describing: error?.message))")
        }
    }
}
