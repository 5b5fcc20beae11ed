public import Foundation
import TeleportAPI
import TeleportAuthClient

/// The profiles and keys under `~/.tsh` (or `$TELEPORT_HOME`), laid out as Teleport's `tsh` does:
///
/// | path | what |
/// | --- | --- |
/// | `current-profile` | the name of the current profile |
/// | `<proxy host>.yaml` | the profile (``Profile``) |
/// | `keys/<proxy host>/<user>` | SSH private key (OpenSSH format) |
/// | `keys/<proxy host>/<user>.pub` | SSH public key |
/// | `keys/<proxy host>/<user>-cert.pub` | SSH certificate (`ssh-keygen -L -f` reads it) |
/// | `keys/<proxy host>/<user>.tls.key` | TLS private key (PKCS#8) |
/// | `keys/<proxy host>/<user>-x509.pem` | TLS certificate |
/// | `keys/<proxy host>/certs.pem` | the cluster's CA certificates |
/// | `keys/<proxy host>/known_hosts` | `@cert-authority` lines for the cluster's hosts |
///
/// Directories are 0700, files 0600, each written to a temporary file and renamed into place, so a
/// crash never leaves a half-written key or profile.
public struct ProfileStore: Sendable {
    /// The directory (`~/.tsh`).
    public let home: URL

    /// Uses `home` as the profile directory.
    public init(home: URL) {
        self.home = home
    }

    /// `$TELEPORT_HOME`, else `~/.tsh`.
    public static func defaultHome(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let custom = environment["TELEPORT_HOME"], !custom.isEmpty {
            return URL(fileURLWithPath: custom)
        }
        let userHome = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return URL(fileURLWithPath: userHome).appendingPathComponent(".tsh")
    }

    /// The file paths of one user's keys in one profile.
    public struct KeyPaths: Sendable {
        /// `keys/<proxy host>`.
        public var directory: URL
        /// The SSH private key.
        public var sshKey: URL
        /// The SSH public key.
        public var sshPublicKey: URL
        /// The SSH certificate.
        public var sshCertificate: URL
        /// The TLS private key.
        public var tlsKey: URL
        /// The TLS certificate.
        public var tlsCertificate: URL
        /// The CA certificates.
        public var caCertificates: URL
        /// The known_hosts file.
        public var knownHosts: URL

        /// The path of a part, for messages.
        public func path(of part: CertificateFacts.Part) -> String {
            switch part {
            case .sshKey: sshKey.path
            case .sshCertificate: sshCertificate.path
            case .tlsKey: tlsKey.path
            case .tlsCertificate: tlsCertificate.path
            }
        }
    }

    /// `current-profile`.
    public var currentProfileURL: URL { home.appendingPathComponent("current-profile") }

    /// `<name>.yaml`.
    public func profileURL(_ name: String) -> URL { home.appendingPathComponent("\(name).yaml") }

    /// `keys/<name>`.
    public func keysDirectory(_ name: String) -> URL { home.appendingPathComponent("keys").appendingPathComponent(name) }

    /// The key files of `user` in profile `name`.
    public func keyPaths(profile name: String, user: String) -> KeyPaths {
        let directory = keysDirectory(name)
        return KeyPaths(
            directory: directory,
            sshKey: directory.appendingPathComponent(user),
            sshPublicKey: directory.appendingPathComponent("\(user).pub"),
            sshCertificate: directory.appendingPathComponent("\(user)-cert.pub"),
            tlsKey: directory.appendingPathComponent("\(user).tls.key"),
            tlsCertificate: directory.appendingPathComponent("\(user)-x509.pem"),
            caCertificates: directory.appendingPathComponent("certs.pem"),
            knownHosts: directory.appendingPathComponent("known_hosts"))
    }

    // MARK: Writing

    /// Stores a login: the keys, then the profile, then (when `makeCurrent`) `current-profile`.
    ///
    /// - Throws: ``TeleportError`` `badParameter` for a user or host that cannot be a file name;
    ///   `connectionProblem` when a file cannot be written.
    public func save(_ profile: Profile, key: ClientKey, makeCurrent: Bool = true) throws {
        try Self.checkName(profile.name, what: "proxy host")
        try Self.checkName(profile.user, what: "user name")
        let paths = keyPaths(profile: profile.name, user: profile.user)
        try makePrivateDirectory(home)
        try makePrivateDirectory(home.appendingPathComponent("keys"))
        try makePrivateDirectory(paths.directory)
        try write(key.sshKeyPEM, to: paths.sshKey)
        try write(try key.sshPublicKeyLine() + "\n", to: paths.sshPublicKey)
        try write(key.sshCertificate + "\n", to: paths.sshCertificate)
        try write(key.tlsKeyPEM, to: paths.tlsKey)
        try write(Self.pemText(key.tlsCertificatePEM), to: paths.tlsCertificate)
        try write(key.caPEMs.map(Self.pemText).joined(), to: paths.caCertificates)
        try write(key.knownHosts.map { $0 + "\n" }.joined(), to: paths.knownHosts)
        try write(profile.yamlText, to: profileURL(profile.name))
        if makeCurrent { try write(profile.name + "\n", to: currentProfileURL) }
    }

    /// Makes `name` the current profile.
    public func setCurrent(_ name: String) throws {
        try Self.checkName(name, what: "profile name")
        try makePrivateDirectory(home)
        try write(name + "\n", to: currentProfileURL)
    }

    // MARK: Reading

    /// The current profile's name, or nil when there is none (never logged in, or logged out).
    public func currentProfileName() throws -> String? {
        guard FileManager.default.fileExists(atPath: currentProfileURL.path) else { return nil }
        guard let text = try? String(contentsOf: currentProfileURL, encoding: .utf8) else {
            throw Self.corrupted(currentProfileURL.path, "cannot be read", proxy: nil)
        }
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if name.isEmpty { return nil }
        do {
            try Self.checkName(name, what: "profile name")
        } catch {
            throw Self.corrupted(currentProfileURL.path, "does not name a profile", proxy: nil)
        }
        return name
    }

    /// The names of every stored profile.
    public func profileNames() -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: home.path)) ?? []
        return files.filter { $0.hasSuffix(".yaml") && !$0.hasPrefix(".") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// Reads profile `name`.
    ///
    /// - Throws: `notFound` when it does not exist; `badParameter` naming the file, and suggesting
    ///   `tsh logout` / `tsh login`, when it cannot be parsed.
    public func loadProfile(_ name: String) throws -> Profile {
        try Self.checkName(name, what: "profile name")
        let url = profileURL(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TeleportError.notFound(
                "the profile \(url.path) does not exist (current-profile names it); run `tsh login --proxy=\(name)`")
        }
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw Self.corrupted(url.path, "cannot be read", proxy: name)
        }
        let profile: Profile
        do {
            profile = try Profile(yamlText: text, source: "")
        } catch let error as TeleportError {
            throw TeleportError.badParameter(
                "the profile \(url.path) is corrupted (\(error.message)); run `tsh logout` and then `tsh login --proxy=\(name)`")
        }
        guard profile.name == name else {
            throw Self.corrupted(url.path, "is for proxy \(profile.webProxyAddress.host), not \(name)", proxy: name)
        }
        do {
            try Self.checkName(profile.user, what: "user name")
        } catch {
            throw Self.corrupted(url.path, "names a user that cannot be a file name", proxy: name)
        }
        return profile
    }

    /// Reads the keys of `profile`'s user.
    ///
    /// - Throws: `badParameter` naming the missing or unreadable file and suggesting how to recover.
    public func loadKey(_ profile: Profile) throws -> ClientKey {
        let paths = keyPaths(profile: profile.name, user: profile.user)
        let proxy = profile.webProxyAddress.hostPort
        func read(_ url: URL) throws -> String {
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw Self.corrupted(url.path, "is missing", proxy: proxy)
            }
            guard let text = try? String(contentsOf: url, encoding: .utf8) else {
                throw Self.corrupted(url.path, "cannot be read (permissions?)", proxy: proxy)
            }
            return text
        }
        let caText = try read(paths.caCertificates)
        let knownHosts = (try? String(contentsOf: paths.knownHosts, encoding: .utf8)) ?? ""
        let certificateLine = try read(paths.sshCertificate).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !certificateLine.isEmpty else { throw Self.corrupted(paths.sshCertificate.path, "is empty", proxy: proxy) }
        return ClientKey(
            sshKeyPEM: try read(paths.sshKey), tlsKeyPEM: try read(paths.tlsKey), sshCertificate: certificateLine,
            tlsCertificatePEM: try read(paths.tlsCertificate), caPEMs: PEMBlock.split(caText).map(\.text),
            knownHosts: knownHosts.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    /// Reads `profile`'s keys and the facts their certificates state.
    ///
    /// - Throws: as ``loadKey(_:)``, and `badParameter` naming a file whose certificate is invalid
    ///   or does not belong to its key.
    public func loadFacts(_ profile: Profile) throws -> (key: ClientKey, facts: CertificateFacts) {
        let key = try loadKey(profile)
        let paths = keyPaths(profile: profile.name, user: profile.user)
        do {
            return (key, try CertificateFacts(key: key, source: paths.path(of:)))
        } catch let error as TeleportError {
            throw TeleportError.badParameter(
                "\(error.message); run `tsh logout` and then `tsh login --proxy=\(profile.webProxyAddress.hostPort)`")
        }
    }

    // MARK: Removing

    /// What ``remove(profile:user:)`` removed.
    public struct Removal: Sendable {
        /// The users whose keys were removed.
        public var users: [String]
        /// Their SSH certificate lines (to remove from the SSH agent), where readable.
        public var sshCertificates: [String]
    }

    /// Removes the keys of `user` (every user when nil) of profile `name`; the profile file and
    /// directory too when no user is left, and `current-profile` when it named this profile.
    ///
    /// Works on corrupted profiles: it needs nothing but the names.
    @discardableResult
    public func remove(profile name: String, user: String? = nil) throws -> Removal {
        try Self.checkName(name, what: "profile name")
        if let user { try Self.checkName(user, what: "user name") }
        let directory = keysDirectory(name)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        // A user name from the (possibly hand-edited) profile is used as a path only when it is a
        // plain file name.
        var profileUser = (try? String(contentsOf: profileURL(name), encoding: .utf8))
            .flatMap { try? Profile(yamlText: $0, source: name) }?.user
        if let candidate = profileUser, (try? Self.checkName(candidate, what: "user name")) == nil { profileUser = nil }
        var present = Set(profileUser.map { [$0] } ?? [])
        for file in files {
            for suffix in ["-cert.pub", ".tls.key", "-x509.pem"] where file.hasSuffix(suffix) {
                present.insert(String(file.dropLast(suffix.count)))
            }
        }
        let affected = present.filter { user == nil || $0 == user }.sorted()
        var certificates: [String] = []
        for each in affected {
            let paths = keyPaths(profile: name, user: each)
            if let line = try? String(contentsOf: paths.sshCertificate, encoding: .utf8) {
                certificates.append(line.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            for url in [paths.sshKey, paths.sshPublicKey, paths.sshCertificate, paths.tlsKey, paths.tlsCertificate] {
                try removeIfPresent(url)
            }
        }
        let remaining = present.subtracting(affected)
        if remaining.isEmpty { try removeIfPresent(directory) }
        if remaining.isEmpty || profileUser == nil || affected.contains(profileUser ?? "") {
            try removeIfPresent(profileURL(name))
            // The current profile is this one, or current-profile is unreadable: remove it.
            let removeCurrent: Bool
            do { removeCurrent = try currentProfileName() == name } catch { removeCurrent = true }
            if removeCurrent { try removeIfPresent(currentProfileURL) }
        }
        return Removal(users: affected, sshCertificates: certificates)
    }

    // MARK: Helpers

    func write(_ text: String, to url: URL) throws {
        try SecureFile.write(Data(text.utf8), to: url, mode: 0o600)
    }

    func makePrivateDirectory(_ url: URL) throws {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        if fileManager.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw TeleportError.badParameter("\(url.path) exists and is not a directory")
            }
        } else {
            do {
                try fileManager.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw TeleportError.connectionProblem("cannot create \(url.path): \(error)")
            }
        }
        do {
            try fileManager.setAttributes([.posixPermissions: 0o700], ofItemAtPath: url.path)
        } catch {
            throw TeleportError.accessDenied("cannot make \(url.path) private (0700): \(error)")
        }
    }

    func removeIfPresent(_ url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        do {
            try FileManager.default.removeItem(at: url)
        } catch {
            throw TeleportError.accessDenied("cannot remove \(url.path): \(error)")
        }
    }

    static func pemText(_ pem: String) -> String {
        pem.hasSuffix("\n") ? pem : pem + "\n"
    }

    static func corrupted(_ path: String, _ what: String, proxy: String?) -> TeleportError {
        let login = proxy.map { "`tsh login --proxy=\($0)`" } ?? "`tsh login`"
        return TeleportError.badParameter("the profile is corrupted: \(path) \(what); run `tsh logout` and then \(login)")
    }

    /// A user or host name must be usable as one file name.
    static func checkName(_ name: String, what: String) throws {
        guard !name.isEmpty, !name.hasPrefix("."), !name.contains("/"), !name.contains("\0"),
            !name.contains(where: { $0.isNewline })
        else {
            throw TeleportError.badParameter("the \(what) \"\(name)\" cannot be used as a file name")
        }
    }
}
