import TeleportAdmin
import Testing

@Suite("tctl nodes add: the auth address a new node can use")
struct JoinAddressTests {
    static func choose(
        _ connected: String, explicit: Bool = false, publicAddrs: [String] = [], advertiseIP: String? = nil, everywhere: Bool = false,
        hosts: [String] = ["10.1.2.3", "2001:db8::5"]
    ) -> JoinAddress {
        JoinAddress.choose(
            connected: connected, explicit: explicit, publicAddrs: publicAddrs, advertiseIP: advertiseIP, listensEverywhere: everywhere,
            hostAddresses: { hosts })
    }

    /// The reported case: `listen_addr: 0.0.0.0:3025` printed `--auth-server=127.0.0.1:3025`.
    @Test func listeningEverywherePrintsThisHostsAddress() {
        let chosen = Self.choose("127.0.0.1:3025", everywhere: true)
        #expect(chosen.address == "10.1.2.3:3025")
        #expect(chosen.source.hasPrefix("this host's address"))
        #expect(Self.choose("[::1]:4025", everywhere: true, hosts: ["2001:db8::5"]).address == "[2001:db8::5]:4025")
    }

    @Test func advertisedAddressesComeFirst() {
        #expect(Self.choose("127.0.0.1:3025", publicAddrs: ["auth.example.com"], everywhere: true)
            == JoinAddress(address: "auth.example.com:3025", source: "auth_service.public_addr"))
        #expect(Self.choose("127.0.0.1:3025", publicAddrs: ["auth.example.com:443"]).address == "auth.example.com:443")
        #expect(Self.choose("127.0.0.1:4025", advertiseIP: "192.0.2.7", everywhere: true)
            == JoinAddress(address: "192.0.2.7:4025", source: "teleport.advertise_ip"))
    }

    @Test func explicitOrSpecificAddressesAreKept() {
        #expect(Self.choose("auth.internal:3025", explicit: true) == JoinAddress(address: "auth.internal:3025", source: "the --auth-server address"))
        #expect(Self.choose("10.9.9.9:3025").address == "10.9.9.9:3025")
    }

    /// Listening on loopback only: the address stays (it is the truth) and the words say why no other host can use it.
    @Test func loopbackOnlyIsExplained() {
        let chosen = Self.choose("127.0.0.1:3025")
        #expect(chosen.address == "127.0.0.1:3025")
        #expect(chosen.source.contains("only this host can use") && chosen.source.contains("public_addr"))
        // No non-loopback address on this host: the same explanation.
        #expect(Self.choose("127.0.0.1:3025", everywhere: true, hosts: []).source.contains("only this host can use"))
    }

    @Test func hostAddressesAreNotLoopback() {
        #expect(!JoinAddress.hostAddresses().contains { $0.hasPrefix("127.") || $0 == "::1" })
    }
}
