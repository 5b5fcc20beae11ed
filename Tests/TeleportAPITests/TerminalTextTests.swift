import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

@Suite("terminal text escaping")
struct TerminalTextTests {
    @Test(arguments: [
        ("plain", "plain"),
        ("Ubuntu 22.04 LTS", "Ubuntu 22.04 LTS"),
        ("ünïcode ✓ 名前", "ünïcode ✓ 名前"),
        ("back\\slash", "back\\slash"),
        ("\u{1B}]0;OWNED\u{07}\u{1B}[2J\u{1B}[31mFAKE", "\\x1b]0;OWNED\\x07\\x1b[2J\\x1b[31mFAKE"),
        ("a\nb\rc\td", "a\\x0ab\\x0dc\\x09d"),
        ("nul\u{0}", "nul\\x00"),
        ("del\u{7F}", "del\\x7f"),
        ("c1 csi\u{9B}31m", "c1 csi\\x9b31m"),
        ("c1 \u{80} \u{9F}", "c1 \\x80 \\x9f"),
        ("rtl \u{202E}txt.exe", "rtl \\u{202e}txt.exe"),
        ("isolate\u{2066}x\u{2069}", "isolate\\u{2066}x\\u{2069}"),
        ("line\u{2028}sep", "line\\u{2028}sep"),
    ])
    func escapes(input: String, expected: String) {
        #expect(TerminalText.escape(input) == expected)
        #expect(TerminalText.isPrintable(expected))
        #expect(TerminalText.isPrintable(input) == (input == expected))
    }

    @Test("no escaped string holds a byte a terminal acts on")
    func everyControlByte() {
        let all = String(String.UnicodeScalarView((0..<0x100).compactMap(Unicode.Scalar.init)))
        let escaped = TerminalText.escape(all)
        #expect(!escaped.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
        #expect(escaped.contains("\\x1b") && escaped.contains("\\x00") && escaped.contains("\\x9f") && escaped.contains("ÿ"))
    }
}

@Suite("shell quoting of printed command lines")
struct ShellQuoteTests {
    @Test(arguments: [
        ("abc123", "abc123"),
        ("sha256:0a1b", "sha256:0a1b"),
        ("127.0.0.1:3025", "127.0.0.1:3025"),
        ("", "''"),
        ("a b", "'a b'"),
        ("$(touch${IFS}/tmp/PWNED)x", "'$(touch${IFS}/tmp/PWNED)x'"),
        ("it's", "'it'\\''s'"),
    ])
    func quotes(input: String, expected: String) {
        #expect(ShellQuote.word(input) == expected)
    }

    @Test("each hostile word round-trips through bash -c as one argument and runs nothing")
    func roundTripsThroughBash() async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "shellquote")
        defer { try? FileManager.default.removeItem(at: directory) }
        let marker = directory.appendingPathComponent("PWNED").path
        let hostile = [
            "$(touch${IFS}\(marker))x", "`touch \(marker)`", "a;touch \(marker)", "'; touch \(marker); '", "\"$(touch \(marker))\"",
            "x\ntouch \(marker)", "*", "a|touch \(marker)", "$HOME", "\u{1B}[31m",
        ]
        for word in hostile {
            let line = "printf '%s' " + ShellQuote.flag("token", word)
            let result = try await TestSupport.run("/bin/bash", ["-c", line])
            #expect(result.exitCode == 0, "\(line): \(result)")
            #expect(result.stdout == "--token=" + word, "\(line): \(result)")
            #expect(!FileManager.default.fileExists(atPath: marker), "\(line) ran a command")
        }
    }
}

@Suite("join token values")
struct TokenValueTests {
    @Test(arguments: ["0123456789abcdef0123456789abcdef", "static-secret-token-42", "A.b_c-d.12345678"])
    func accepted(value: String) throws {
        try TokenValue.check(value)
    }

    @Test(arguments: [
        "$(touch${IFS}/tmp/PWNED)x", "`id`xxxxxxxx", "abc;defghij", "quote'xxxxxxx", "dq\"xxxxxxxx", "esc\u{1B}[31mxxx", "with space x",
        "short", String(repeating: "a", count: 257), "ünïcode-token",
    ])
    func refused(value: String) {
        let error = #expect(throws: TeleportError.self) { try TokenValue.check(value, source: "--token") }
        #expect(error?.code == .badParameter)
        #expect(error?.message.contains("--token is not a valid token: use 8 to 256 letters, digits and - _ .") == true)
    }
}

@Suite("proxy targets and their cluster")
struct ProxyTargetTests {
    @Test(arguments: [
        ("db1", "db1", nil, nil),
        ("db1:3022", "db1", 3022, nil),
        ("db1:0@ssh.example", "db1", nil, "ssh.example"),
        ("db1:3022@other.example", "db1", 3022, "other.example"),
        ("[::1]:22@c", "::1", 22, "c"),
    ] as [(String, String, Int?, String?)])
    func parses(text: String, host: String, port: Int?, cluster: String?) throws {
        #expect(try ProxyTarget.parse(text) == ProxyTarget(host: host, port: port, cluster: cluster))
    }

    @Test("a target for another cluster is refused, naming it; this cluster or none is accepted")
    func cluster() throws {
        try ProxyTarget.parse("db1:22").check(servedCluster: "ssh.example")
        try ProxyTarget.parse("db1:22@ssh.example").check(servedCluster: "ssh.example")
        try ProxyTarget.parse("db1:22@SSH.example").check(servedCluster: "ssh.example")
        let other = #expect(throws: TeleportError.self) { try ProxyTarget.parse("db1:22@other.example").check(servedCluster: "ssh.example") }
        #expect(other?.code == .notFound)
        #expect(other?.message.contains("cluster \"other.example\" is not known to this proxy") == true, "\(other?.message ?? "")")
        let direct = #expect(throws: TeleportError.self) { try ProxyTarget.direct(host: "db1@other.example", port: 22).check(servedCluster: "ssh.example") }
        #expect(direct?.message.contains("\"other.example\"") == true)
        #expect(try ProxyTarget.direct(host: "db1", port: 22) == ProxyTarget(host: "db1", port: 22, cluster: nil))
        #expect(throws: TeleportError.self) { try ProxyTarget.parse("db1@") }
        #expect(throws: TeleportError.self) { try ProxyTarget.parse("@c") }
    }
}

@Suite("node labels are printable and bounded")
struct NodeLabelValidationTests {
    func node(labels: [String: String] = [:], hostname: String = "db1", command: String? = nil) -> ServerNode {
        var node = ServerNode(uuid: "6f1c5f8e-7d0a-4c3b-9e11-000000000001", hostname: hostname, addr: "127.0.0.1:3022", labels: labels)
        if let command { node.spec.cmdLabels = ["uptime": .init(period: "1m0s", command: ["uptime"], result: command)] }
        return node
    }

    @Test("a label value, a label key, a dynamic label result or a host name with a control character is refused")
    func refused() throws {
        try node(labels: ["env": "prod", "team/owner": "ops ünïcode"]).validate()
        for bad in [
            node(labels: ["env": "\u{1B}]0;OWNED\u{07}\u{1B}[2J"]), node(labels: ["e\u{1B}nv": "x"]), node(labels: ["env": String(repeating: "v", count: 257)]),
            node(command: "up \u{1B}[31m3 days"), node(hostname: "db1\u{1B}[2J"), node(labels: ["env": "a\u{202E}b"]),
        ] {
            let error = #expect(throws: TeleportError.self) { try bad.validate() }
            #expect(error?.code == .badParameter)
            #expect(error.map { TerminalText.isPrintable($0.message) } == true, "the error quotes the input escaped")
        }
    }

    @Test("tctl create of such a node document is refused when it is decoded")
    func decodeRefused() {
        let yaml = """
            kind: node
            version: v2
            metadata:
              name: 6f1c5f8e-7d0a-4c3b-9e11-000000000001
              labels:
                env: "\\e[31mred"
            spec:
              addr: 127.0.0.1:3022
              hostname: db1
            """
        #expect(throws: TeleportError.self) { try ResourceCodec.decodeDocuments(yaml, source: "node.yaml") }
    }
}
