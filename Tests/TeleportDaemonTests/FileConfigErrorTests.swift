import Foundation
import TeleportAPI
import TeleportDaemon
import Testing

/// Bad `teleport.yaml` input: one `badParameter` error naming the file, the key and what was expected.
@Suite("teleport.yaml errors")
struct FileConfigErrorTests {
    static let file = "/etc/teleport/bad.yaml"

    /// One bad document and the parts its error message must hold.
    struct BadInput: CustomTestStringConvertible, Sendable {
        var name: String
        var yaml: String
        var fragments: [String]
        var testDescription: String { name }
    }

    static let badInputs: [BadInput] = [
        BadInput(
            name: "unknown top-level key", yaml: "teleport:\n  nodename: a\nauth_servce:\n  enabled: yes\n",
            fragments: ["auth_servce", "unknown key"]),
        BadInput(
            name: "unknown nested key", yaml: "auth_service:\n  listen_adr: 0.0.0.0:3025\n",
            fragments: ["auth_service.listen_adr", "unknown key"]),
        BadInput(
            name: "unknown key in teleport.log", yaml: "teleport:\n  log:\n    colour: red\n",
            fragments: ["teleport.log.colour", "unknown key"]),
        BadInput(
            name: "unknown key in connection_limits", yaml: "teleport:\n  connection_limits:\n    max_conns: 5\n",
            fragments: ["teleport.connection_limits.max_conns", "unknown key"]),
        BadInput(
            name: "unknown key in authentication", yaml: "auth_service:\n  authentication:\n    second_factr: otp\n",
            fragments: ["auth_service.authentication.second_factr", "unknown key"]),
        BadInput(
            name: "unknown key in a label command",
            yaml: "ssh_service:\n  commands:\n  - name: a\n    command: [ls]\n    every: 1m\n",
            fragments: ["ssh_service.commands[0].every", "unknown key"]),
        BadInput(
            name: "unknown key in https_keypairs",
            yaml: "proxy_service:\n  https_keypairs:\n  - key_file: k\n    cert: c\n",
            fragments: ["proxy_service.https_keypairs[0].cert", "unknown key"]),
        BadInput(
            name: "a list where a string is expected", yaml: "teleport:\n  nodename: [a, b]\n",
            fragments: ["teleport.nodename", "expected a string", "a list"]),
        BadInput(
            name: "a mapping where a string is expected", yaml: "auth_service:\n  cluster_name:\n    name: x\n",
            fragments: ["auth_service.cluster_name", "expected a string", "a mapping"]),
        BadInput(
            name: "a string where a section is expected", yaml: "ssh_service: yes\n",
            fragments: ["ssh_service", "expected a mapping", "\"yes\""]),
        BadInput(
            name: "a string where a list is expected", yaml: "ssh_service:\n  commands: hostname\n",
            fragments: ["ssh_service.commands", "expected a list", "\"hostname\""]),
        BadInput(
            name: "enabled: maybe", yaml: "proxy_service:\n  enabled: maybe\n",
            fragments: ["proxy_service.enabled", "expected yes or no", "\"maybe\""]),
        BadInput(
            name: "max_connections: lots", yaml: "teleport:\n  connection_limits:\n    max_connections: lots\n",
            fragments: ["teleport.connection_limits.max_connections", "expected a whole number", "\"lots\""]),
        BadInput(
            name: "port is not a number", yaml: "auth_service:\n  listen_addr: \"host:notaport\"\n",
            fragments: ["auth_service.listen_addr", "expected an address host:port", "host:notaport"]),
        BadInput(
            name: "port out of range", yaml: "ssh_service:\n  listen_addr: 0.0.0.0:70000\n",
            fragments: ["ssh_service.listen_addr", "expected an address host:port", "70000"]),
        BadInput(
            name: "bad auth server", yaml: "teleport:\n  auth_servers:\n  - 10.1.0.5:3025\n  - 10.1.0.6:port\n",
            fragments: ["teleport.auth_servers[1]", "expected an address host:port", "10.1.0.6:port"]),
        BadInput(
            name: "storage.type: dynamodb", yaml: "teleport:\n  storage:\n    type: dynamodb\n",
            fragments: ["teleport.storage.type", "dynamodb", "not supported", "sqlite", "etcd"]),
        BadInput(
            name: "storage.type: unknown", yaml: "teleport:\n  storage:\n    type: floppy\n",
            fragments: ["teleport.storage.type", "expected sqlite, etcd or postgres", "\"floppy\""]),
        BadInput(
            name: "a label command without a name", yaml: "ssh_service:\n  commands:\n  - command: [uptime]\n    period: 1m\n",
            fragments: ["ssh_service.commands[0]", "expected a command with a name"]),
        BadInput(
            name: "a label command without a command", yaml: "ssh_service:\n  commands:\n  - name: up\n    period: 1m\n",
            fragments: ["ssh_service.commands[0]", "non-empty command"]),
        BadInput(
            name: "a period that is not a duration",
            yaml: "ssh_service:\n  commands:\n  - name: up\n    command: [uptime]\n    period: often\n",
            fragments: ["ssh_service.commands[0].period", "expected a duration", "\"often\""]),
        BadInput(
            name: "a period without a unit",
            yaml: "ssh_service:\n  commands:\n  - name: up\n    command: [uptime]\n    period: 60\n",
            fragments: ["ssh_service.commands[0].period", "expected a duration", "\"60\""]),
        BadInput(
            name: "unknown log severity", yaml: "teleport:\n  log:\n    severity: LOUD\n",
            fragments: ["teleport.log.severity", "expected one of DEBUG, INFO, WARN, ERROR", "\"LOUD\""]),
        BadInput(
            name: "unknown second factor", yaml: "auth_service:\n  authentication:\n    second_factor: sms\n",
            fragments: ["auth_service.authentication.second_factor", "expected otp or off", "\"sms\""]),
        BadInput(
            name: "https key pair without a cert", yaml: "proxy_service:\n  https_keypairs:\n  - key_file: k.pem\n",
            fragments: ["proxy_service.https_keypairs[0]", "expected key_file and cert_file"]),
        BadInput(
            name: "unsupported service enabled flag is not yes or no", yaml: "kubernetes_service:\n  enabled: perhaps\n",
            fragments: ["kubernetes_service.enabled", "expected yes or no"]),
    ]

    @Test(arguments: badInputs)
    func badInputIsRefusedWithFileKeyAndExpectation(_ input: BadInput) throws {
        let error = try DaemonTestSupport.parseError(input.yaml, file: Self.file)
        #expect(error.code == .badParameter)
        #expect(error.message.hasPrefix("\(Self.file): "), "\(error.message)")
        for fragment in input.fragments {
            #expect(error.message.contains(fragment), "\"\(fragment)\" missing from: \(error.message)")
        }
        #expect(!error.message.contains("\n"), "one line: \(error.message)")
    }

    /// Errors that have a line say which one.
    @Test func typeErrorsNameTheLine() throws {
        let error = try DaemonTestSupport.parseError("teleport:\n  nodename: a\n  data_dir: [x]\n", file: Self.file)
        #expect(error.message.contains("teleport.data_dir (line 3)"), "\(error.message)")
    }

    @Test(arguments: [
        "teleport:\n  nodename: [unclosed\n",
        "teleport:\n  nodename: a\n data_dir: b\n",
        "teleport:\n\tnodename: a\n",
        "auth_service:\n  tokens: \"unterminated\n",
    ])
    func malformedYAMLIsRefused(_ yaml: String) throws {
        let error = try DaemonTestSupport.parseError(yaml, file: Self.file)
        #expect(error.code == .badParameter)
        #expect(error.message.hasPrefix("\(Self.file): not valid YAML: "), "\(error.message)")
        #expect(!error.message.contains("\n"), "one line: \(error.message)")
    }

    /// The YAML parser's own explanation (what it expected) survives the one-line message.
    @Test
    func malformedYAMLSaysWhatWasExpected() throws {
        let error = try DaemonTestSupport.parseError("teleport:\n  nodename: [unclosed\n", file: Self.file)
        #expect(error.message.contains("did not find expected"), "\(error.message)")
    }

    @Test func aDocumentThatIsNotAMappingIsRefused() throws {
        let error = try DaemonTestSupport.parseError("- teleport\n- auth_service\n", file: Self.file)
        #expect(error.code == .badParameter)
        #expect(error.message.contains(Self.file))
        #expect(error.message.contains("expected a mapping"), "\(error.message)")
    }

    @Test(arguments: [
        ("teleport:\n  nodename: a\n  nodename: b\n", "teleport.nodename"),
        ("auth_service:\n  listen_addr: 0.0.0.0:3025\n  enabled: yes\n  listen_addr: 0.0.0.0:4025\n", "auth_service.listen_addr"),
        ("teleport:\n  nodename: a\nteleport:\n  nodename: b\n", "teleport"),
    ])
    func duplicatedKeyIsRefused(yaml: String, key: String) throws {
        let error = try DaemonTestSupport.parseError(yaml, file: Self.file)
        #expect(error.code == .badParameter)
        #expect(error.message.hasPrefix("\(Self.file): "), "\(error.message)")
        let bareKey = key.split(separator: ".").last.map(String.init) ?? key
        #expect(error.message.contains(bareKey), "\(error.message)")
    }

    /// The duplicated key is named by its full path, like every other error.
    @Test(
        arguments: [
            ("auth_service:\n  listen_addr: 0.0.0.0:3025\n  enabled: yes\n  listen_addr: 0.0.0.0:4025\n", "auth_service.listen_addr")
        ])
    func duplicatedKeyIsNamedByItsPath(yaml: String, key: String) throws {
        let error = try DaemonTestSupport.parseError(yaml, file: Self.file)
        #expect(error.message.contains(key), "\(error.message)")
        #expect(error.message.contains("appears twice"), "\(error.message)")
    }

    @Test func loadNamesAMissingFile() throws {
        let path = "/nonexistent-\(UUID().uuidString)/teleport.yaml"
        let error = #expect(throws: TeleportError.self) { try FileConfig.load(path: path) }
        #expect(error?.code == .notFound)
        #expect(error?.message.contains(path) == true)
    }

    @Test func loadRefusesNonUTF8() throws {
        let path = try DaemonTestSupport.writeTemporaryConfig("")
        try Data([0x74, 0x65, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: TeleportError.self) { try FileConfig.load(path: path) }
        #expect(error?.code == .badParameter)
        #expect(error?.message.contains(path) == true)
    }

    @Test func loadErrorsNameThePathGiven() throws {
        let path = try DaemonTestSupport.writeTemporaryConfig("ssh_service:\n  enabled: maybe\n")
        let error = #expect(throws: TeleportError.self) { try FileConfig.load(path: path) }
        #expect(error?.code == .badParameter)
        #expect(error?.message.hasPrefix("\(path): ssh_service.enabled") == true, "\(String(describing: error))")
    }
}
