import TeleportAPI
import Testing

@Suite("HostPort")
struct HostPortTests {
    @Test(arguments: [
        ("10.1.0.5:3025", "10.1.0.5", 3025),
        ("127.0.0.1:0", "127.0.0.1", 0),
        ("0.0.0.0:65535", "0.0.0.0", 65535),
        ("[::1]:3022", "::1", 3022),
        ("[fe80::1%eth0]:22", "fe80::1%eth0", 22),
        ("[::]", "::", 3025),
        ("::1", "::1", 3025),
        ("auth.example.com", "auth.example.com", 3025),
        ("10.1.0.5", "10.1.0.5", 3025),
        (":3080", "0.0.0.0", 3080),
        ("https://proxy.example.com:3080", "proxy.example.com", 3080),
        ("tcp://10.0.0.1:5432", "10.0.0.1", 5432),
        ("  host:22  ", "host", 22),
    ])
    func parses(text: String, host: String, port: Int) throws {
        let parsed = try HostPort.parse(text, defaultPort: 3025, key: "listen_addr")
        #expect(parsed.host == host)
        #expect(parsed.port == port)
    }

    @Test(arguments: [
        "host:notaport", "host:70000", "host:65536", "host:-1", "host:", "", "   ", "[::1", "[::1]x", "[::1]:x",
        "a b:22", "host/path:22", "https://",
    ])
    func refuses(text: String) {
        let error = #expect(throws: TeleportError.self) { try HostPort.parse(text, defaultPort: 3025, key: "auth_servers[0]") }
        #expect(error?.code == .badParameter)
        #expect(error?.message.hasPrefix("auth_servers[0]: ") == true, "\(String(describing: error))")
    }

    @Test func theErrorQuotesTheInput() {
        let error = #expect(throws: TeleportError.self) { try HostPort.parse("host:70000", defaultPort: 1, key: "k") }
        #expect(error?.message.contains("\"host:70000\"") == true)
        #expect(error?.message.contains("port") == true)
    }
}
