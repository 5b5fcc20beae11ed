import Foundation
import TeleportAPI
import TeleportClient
import TeleportTestSupport
import Testing

/// The profile directory: layout, permissions, atomic writes, reading back, corruption, removal.
@Suite("profile store")
struct ProfileStoreTests {
    let home: URL
    let store: ProfileStore
    let cluster: FakeCluster

    init() throws {
        home = try TestSupport.makeTemporaryDirectory(prefix: "tsh-store").appendingPathComponent(".tsh")
        store = ProfileStore(home: home)
        cluster = try FakeCluster()
    }

    func profile(user: String = "joe", host: String = "proxy.example.com") -> Profile {
        Profile(
            webProxyAddress: ProxyAddress(host: host, port: 3080), sshProxyAddress: "proxy.example.com:3023", user: user,
            cluster: cluster.name, insecure: false)
    }

    @Test("save writes Teleport's layout: directories 0700, every file 0600, no temporary file left")
    func layoutAndModes() throws {
        let key = try cluster.clientKey()
        try store.save(profile(), key: key)
        #expect(try mode(home) == 0o700)
        #expect(try mode(home.appendingPathComponent("keys")) == 0o700)
        let keys = home.appendingPathComponent("keys/proxy.example.com")
        #expect(try mode(keys) == 0o700)
        let files = try FileManager.default.contentsOfDirectory(atPath: keys.path).sorted()
        #expect(files == ["certs.pem", "joe", "joe-cert.pub", "joe-x509.pem", "joe.pub", "joe.tls.key", "known_hosts"])
        for file in files { #expect(try mode(keys.appendingPathComponent(file)) == 0o600, "\(file)") }
        #expect(try mode(home.appendingPathComponent("proxy.example.com.yaml")) == 0o600)
        #expect(try mode(home.appendingPathComponent("current-profile")) == 0o600)
        #expect(try TestSupport.read(home.appendingPathComponent("current-profile")) == "proxy.example.com\n")
        let top = try FileManager.default.contentsOfDirectory(atPath: home.path).sorted()
        #expect(top == ["current-profile", "keys", "proxy.example.com.yaml"])
        #expect(try TestSupport.read(keys.appendingPathComponent("joe-cert.pub")) == key.sshCertificate + "\n")
        #expect(try TestSupport.read(keys.appendingPathComponent("joe")) == key.sshKeyPEM)
        #expect(try TestSupport.read(keys.appendingPathComponent("joe.pub")) == (try key.sshPublicKeyLine()) + "\n")
    }

    @Test("an existing home with loose permissions is made private")
    func tightensHome() throws {
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        try store.save(profile(), key: try cluster.clientKey())
        #expect(try mode(home) == 0o700)
    }

    @Test("what is saved reads back: profile, key and the facts of its certificates")
    func roundTrip() throws {
        let key = try cluster.clientKey(logins: ["joe", "root"])
        try store.save(profile(), key: key)
        #expect(try store.currentProfileName() == "proxy.example.com")
        let loaded = try store.loadProfile("proxy.example.com")
        #expect(loaded == profile())
        #expect(try store.loadKey(loaded) == key)
        let facts = try store.loadFacts(loaded).facts
        #expect(facts.username == "joe")
        #expect(facts.clusterName == cluster.name)
        #expect(facts.roles == ["access"])
        #expect(facts.logins == ["joe", "root"])
        #expect(store.profileNames() == ["proxy.example.com"])
    }

    @Test("a second login replaces the files in place (rename over the old ones)")
    func overwrite() throws {
        try store.save(profile(), key: try cluster.clientKey(logins: ["joe"]))
        let second = try cluster.clientKey(logins: ["joe", "admin"])
        try store.save(profile(), key: second)
        #expect(try store.loadKey(profile()) == second)
        #expect(try store.loadFacts(profile()).facts.logins == ["joe", "admin"])
    }

    @Test("no profile: currentProfileName is nil")
    func empty() throws {
        #expect(try store.currentProfileName() == nil)
        #expect(store.profileNames().isEmpty)
    }

    @Test(
        "a corrupted profile file gives an error naming the file and suggesting logout and login",
        arguments: ["web_proxy_addr: [\n", "not yaml at all", "user: joe\n", "  indented: 1\n", "web_proxy_addr: \"unterminated\n"])
    func corruptedYAML(_ text: String) throws {
        try store.save(profile(), key: try cluster.clientKey())
        let url = home.appendingPathComponent("proxy.example.com.yaml")
        try TestSupport.write(text, to: url)
        let error = try #require(throws: TeleportError.self) { try store.loadProfile("proxy.example.com") }
        #expect(error.message.hasPrefix("the profile \(url.path) is corrupted ("), "\(error.message)")
        #expect(error.message.contains("run `tsh logout` and then `tsh login --proxy=proxy.example.com`"), "\(error.message)")
    }

    @Test("a missing or garbled key file is named in the error", arguments: ["joe-cert.pub", "joe-x509.pem", "joe", "joe.tls.key"])
    func missingFile(_ file: String) throws {
        try store.save(profile(), key: try cluster.clientKey())
        let url = home.appendingPathComponent("keys/proxy.example.com/\(file)")
        try FileManager.default.removeItem(at: url)
        let missing = try #require(throws: TeleportError.self) { try store.loadFacts(profile()) }
        #expect(missing.message.contains(url.path) && missing.message.contains("is missing"), "\(missing.message)")
        #expect(missing.message.contains("tsh logout"), "\(missing.message)")

        try TestSupport.write("garbage\n", to: url)
        let garbled = try #require(throws: TeleportError.self) { try store.loadFacts(profile()) }
        #expect(garbled.message.contains(url.path), "\(garbled.message)")
        #expect(garbled.message.contains("tsh logout"), "\(garbled.message)")
    }

    @Test("certificates from another login do not pass for this key")
    func mismatchedCertificate() throws {
        try store.save(profile(), key: try cluster.clientKey())
        let other = try cluster.clientKey()
        let paths = store.keyPaths(profile: "proxy.example.com", user: "joe")
        try TestSupport.write(other.sshCertificate + "\n", to: paths.sshCertificate)
        let ssh = try #require(throws: TeleportError.self) { try store.loadFacts(profile()) }
        #expect(ssh.message.contains("does not certify the SSH private key"), "\(ssh.message)")

        try store.save(profile(), key: try cluster.clientKey())
        try TestSupport.write(other.tlsCertificatePEM, to: paths.tlsCertificate)
        let tls = try #require(throws: TeleportError.self) { try store.loadFacts(profile()) }
        #expect(tls.message.contains("does not certify the TLS private key"), "\(tls.message)")
    }

    @Test("the facts come from the certificates, not the profile file")
    func tamperedProfile() throws {
        try store.save(profile(), key: try cluster.clientKey(logins: ["joe"]))
        let url = home.appendingPathComponent("proxy.example.com.yaml")
        let text = try TestSupport.read(url).replacingOccurrences(of: cluster.name, with: "evil.example")
        try TestSupport.write(text, to: url)
        let loaded = try store.loadProfile("proxy.example.com")
        #expect(loaded.cluster == "evil.example")
        #expect(try store.loadFacts(loaded).facts.clusterName == cluster.name)
    }

    @Test("a current-profile naming a path outside the directory is refused")
    func hostileCurrentProfile() throws {
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        try TestSupport.write("../../etc/passwd\n", to: store.currentProfileURL)
        let error = try #require(throws: TeleportError.self) { try store.currentProfileName() }
        #expect(error.message.contains(store.currentProfileURL.path) && error.message.contains("tsh logout"), "\(error.message)")
    }

    @Test("user and host names that are not file names are refused", arguments: ["", "../x", ".hidden", "a/b"])
    func badNames(_ name: String) throws {
        #expect(throws: TeleportError.self) { try store.save(profile(user: name), key: try cluster.clientKey()) }
    }

    @Test("remove: the whole profile with its current-profile, and the certificates for the agent")
    func removeAll() throws {
        let key = try cluster.clientKey()
        try store.save(profile(), key: key)
        let removal = try store.remove(profile: "proxy.example.com")
        #expect(removal.users == ["joe"])
        #expect(removal.sshCertificates == [key.sshCertificate])
        #expect(try FileManager.default.contentsOfDirectory(atPath: home.path) == ["keys"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: home.appendingPathComponent("keys").path).isEmpty)
        #expect(try store.currentProfileName() == nil)
    }

    @Test("remove one user: the other user's keys and the current profile of another proxy stay")
    func removeOneUser() throws {
        try store.save(profile(user: "ann"), key: try cluster.clientKey(user: "ann"))
        try store.save(profile(user: "joe"), key: try cluster.clientKey(user: "joe"))
        let removal = try store.remove(profile: "proxy.example.com", user: "ann")
        #expect(removal.users == ["ann"])
        let keys = try FileManager.default.contentsOfDirectory(atPath: home.appendingPathComponent("keys/proxy.example.com").path)
        #expect(Set(keys) == ["certs.pem", "joe", "joe-cert.pub", "joe-x509.pem", "joe.pub", "joe.tls.key", "known_hosts"])
        #expect(try store.currentProfileName() == "proxy.example.com", "joe's profile is still current")
        #expect(try store.loadFacts(store.loadProfile("proxy.example.com")).facts.username == "joe")

        try store.save(profile(user: "joe", host: "other.example.com"), key: try cluster.clientKey(user: "joe"))
        try store.remove(profile: "proxy.example.com")
        #expect(try store.currentProfileName() == "other.example.com")
    }

    @Test("remove never follows a user name from the profile file out of the keys directory")
    func removeHostileUser() throws {
        try store.save(profile(), key: try cluster.clientKey())
        let victim = home.deletingLastPathComponent().appendingPathComponent("victim")
        try TestSupport.write("keep", to: victim)
        try TestSupport.write(
            "web_proxy_addr: proxy.example.com:3080\nuser: ../../../victim\n", to: home.appendingPathComponent("proxy.example.com.yaml"))
        let refused = try #require(throws: TeleportError.self) { try store.loadProfile("proxy.example.com") }
        #expect(refused.message.contains("cannot be a file name"), "\(refused.message)")
        try store.remove(profile: "proxy.example.com")
        #expect(FileManager.default.fileExists(atPath: victim.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: home.path) == ["keys"])
    }

    @Test("remove works on a corrupted profile")
    func removeCorrupted() throws {
        try store.save(profile(), key: try cluster.clientKey())
        try TestSupport.write("garbage: [", to: home.appendingPathComponent("proxy.example.com.yaml"))
        let removal = try store.remove(profile: "proxy.example.com")
        #expect(removal.users == ["joe"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: home.path) == ["keys"])
    }
}
