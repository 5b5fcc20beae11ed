import Foundation
import TeleportTestSupport
import Testing

/// `tsh login`, `status` and `logout` against a real cluster, typed on a pseudo-terminal: a user
/// invited with `tctl users add`, signed up through the proxy's page with a TOTP code, then
/// logging in with the password and the next code.
@Suite("tsh login, status and logout against a real cluster", .serialized)
struct TSHLoginTests {
    static let password = "correct horse battery staple 7"

    /// Starts a cluster, signs `joe` (logins joe, root) up, and returns the TOTP code source.
    static func signUp(_ cluster: ClusterFixture, name: String = "joe", logins: String = "joe,root") async throws -> TSHCodes {
        try await cluster.start()
        let link = try await SignupHelper.addUser(cluster, name: name, logins: logins)
        let enrolled = try await SignupHelper.enrol(WebDriver(cluster: cluster), link, password: password)
        return TSHCodes(secret: enrolled.secret, usedAt: enrolled.time)
    }

    /// Runs `tsh login ARGS` on a terminal and answers its two prompts.
    static func login(_ tsh: TSHRunner, _ arguments: [String], user: String = "joe", password: String, code: String) async throws
        -> (status: Int32, transcript: String)
    {
        let terminal = try tsh.terminal(["login"] + arguments)
        try await terminal.expect("Enter password for Teleport user \(user):")
        terminal.sendLine(password)
        try await terminal.expect("Enter your OTP token:")
        terminal.sendLine(code)
        let status = try await terminal.wait()
        return (status, terminal.transcript)
    }

    @Test("login on a terminal stores 0600 keys, loads the agent; status reads the certificates; logout removes everything")
    func loginStatusLogout() async throws {
        let agent = try await TSHAgentFixture()
        let tsh = try TSHRunner(agentSocket: agent.socketPath)
        defer { tsh.cleanUp() }
        do {
            try await withCluster(try ClusterFixture(clusterName: "tsh.example")) { cluster in
                try await loginStatusLogout(cluster, tsh: tsh, agent: agent)
            }
        } catch {
            await agent.stop()
            throw error
        }
        await agent.stop()
    }

    func loginStatusLogout(_ cluster: ClusterFixture, tsh: TSHRunner, agent: TSHAgentFixture) async throws {
        var codes = try await Self.signUp(cluster)
        let proxy = "127.0.0.1:\(cluster.webPort)"

        let before = try await tsh.run(["status"])
        #expect(before.exitCode == 1 && before.stdout == "Not logged in.\n", "\(before)")

        let login = try await Self.login(
            tsh, ["--proxy=\(proxy)", "--user=joe", "--insecure"], password: Self.password, code: try await codes.next())
        #expect(login.status == 0, "\(login.transcript)\n\(cluster.log)")
        #expect(!login.transcript.contains(Self.password), "the password is not echoed: \(login.transcript)")
        #expect(login.transcript.contains("> Profile URL:        https://\(proxy)"), "\(login.transcript)")
        #expect(login.transcript.contains("Logins:             joe, root"), "\(login.transcript)")

        // The layout and permissions of ~/.tsh.
        let keys = "keys/127.0.0.1"
        #expect(try tsh.mode("") == 0o700)
        #expect(try tsh.mode("keys") == 0o700)
        #expect(try tsh.mode(keys) == 0o700)
        for file in ["joe", "joe.pub", "joe-cert.pub", "joe.tls.key", "joe-x509.pem", "certs.pem", "known_hosts"] {
            #expect(try tsh.mode("\(keys)/\(file)") == 0o600, "\(file)")
        }
        #expect(try tsh.mode("127.0.0.1.yaml") == 0o600)
        #expect(try TestSupport.read(tsh.tshHome.appendingPathComponent("current-profile")) == "127.0.0.1\n")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: tsh.tshHome.appendingPathComponent(keys).path)
            .filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty, "no temporary files are left: \(leftovers)")
        let knownHosts = try TestSupport.read(tsh.tshHome.appendingPathComponent("\(keys)/known_hosts"))
        #expect(knownHosts.hasPrefix("@cert-authority "), "\(knownHosts)")

        let status = try await tsh.run(["status"])
        #expect(status.exitCode == 0, "\(status)")
        #expect(status.stdout.contains("> Profile URL:        https://\(proxy)\n"), "\(status.stdout)")
        #expect(status.stdout.contains("  Logged in as:       joe\n"), "\(status.stdout)")
        #expect(status.stdout.contains("  Cluster:            tsh.example\n"), "\(status.stdout)")
        #expect(status.stdout.contains("  Logins:             joe, root\n"), "\(status.stdout)")
        #expect(status.stdout.range(of: #"Valid until:        \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[(12h0m|11h59m) left\]"#, options: .regularExpression) != nil,
            "\(status.stdout)")

        // OpenSSH reads the stored certificate.
        let certificateFile = tsh.tshHome.appendingPathComponent("\(keys)/joe-cert.pub").path
        let described = try await TestSupport.run(TestSupport.sshKeygen, ["-L", "-f", certificateFile])
        #expect(described.exitCode == 0, "\(described)")
        #expect(described.stdout.contains("ssh-ed25519-cert-v01@openssh.com user certificate"), "\(described.stdout)")
        let principals = described.stdout.components(separatedBy: "Principals:").last?.components(separatedBy: "Critical Options:").first ?? ""
        #expect(principals.contains("joe") && principals.contains("root"), "\(described.stdout)")
        // And the private key matches the public key file.
        let derived = try await TestSupport.run(TestSupport.sshKeygen, ["-y", "-f", tsh.tshHome.appendingPathComponent("\(keys)/joe").path])
        let publicLine = try TestSupport.read(tsh.tshHome.appendingPathComponent("\(keys)/joe.pub"))
        let derivedKey = derived.stdout.split(whereSeparator: \.isWhitespace).prefix(2)
        #expect(derived.exitCode == 0 && derivedKey == publicLine.split(whereSeparator: \.isWhitespace).prefix(2), "\(derived)")

        // The agent holds the certificate.
        let certificateBlob = try TestSupport.read(URL(fileURLWithPath: certificateFile)).split(separator: " ")[1]
        let listed = try await agent.listed()
        #expect(listed.stdout.contains("ssh-ed25519-cert-v01@openssh.com \(certificateBlob)"), "\(listed)")

        // A tampered profile cannot change what status reports: the facts come from the certificates.
        let profileURL = tsh.tshHome.appendingPathComponent("127.0.0.1.yaml")
        let original = try TestSupport.read(profileURL)
        try TestSupport.write(original.replacingOccurrences(of: "tsh.example", with: "evil.example"), to: profileURL)
        let tampered = try await tsh.run(["status"])
        #expect(tampered.stdout.contains("Cluster:            tsh.example"), "\(tampered)")
        // A corrupted one gives a clear error naming the file.
        try TestSupport.write("web_proxy_addr: [\n::: not yaml\n", to: profileURL)
        let corrupted = try await tsh.run(["status"])
        #expect(corrupted.exitCode == 1, "\(corrupted)")
        #expect(corrupted.stderr.hasPrefix("ERROR: the profile \(profileURL.path) is corrupted"), "\(corrupted)")
        #expect(corrupted.stderr.contains("tsh logout") && corrupted.stderr.contains("tsh login --proxy=127.0.0.1"), "\(corrupted)")
        try TestSupport.write(original, to: profileURL)

        // A second login writes an identity file instead (with --ttl); -i uses it.
        let identity = tsh.home.appendingPathComponent("joe.identity").path
        let out = try await Self.login(
            tsh, ["--proxy=\(proxy)", "--user=joe", "--insecure", "--ttl=1h", "--out=\(identity)"], password: Self.password,
            code: try await codes.next())
        #expect(out.status == 0, "\(out.transcript)")
        let identityMode = (try FileManager.default.attributesOfItem(atPath: identity)[.posixPermissions] as? Int ?? 0) & 0o777
        #expect(identityMode == 0o600)
        let fromIdentity = try await tsh.run(["-i", identity, "--proxy=\(proxy)", "status"])
        #expect(fromIdentity.exitCode == 0, "\(fromIdentity)")
        #expect(fromIdentity.stdout.contains("Logins:             joe, root"), "\(fromIdentity)")
        #expect(fromIdentity.stdout.range(of: #"\[(1h0m|59m) left\]"#, options: .regularExpression) != nil, "\(fromIdentity)")

        // Logout removes the profile, the keys and the agent's copy.
        let logout = try await tsh.run(["logout"])
        #expect(logout.exitCode == 0 && logout.stdout == "Logged out joe from 127.0.0.1.\n", "\(logout)")
        #expect(!FileManager.default.fileExists(atPath: tsh.tshHome.appendingPathComponent(keys).path))
        #expect(!FileManager.default.fileExists(atPath: profileURL.path))
        #expect(!FileManager.default.fileExists(atPath: tsh.tshHome.appendingPathComponent("current-profile").path))
        let afterLogout = try await agent.listed()
        #expect(!afterLogout.stdout.contains(String(certificateBlob)), "\(afterLogout)")
        let after = try await tsh.run(["status"])
        #expect(after.exitCode == 1 && after.stdout == "Not logged in.\n", "\(after)")
    }

    @Test("bad input: an untrusted proxy certificate, a wrong password, a wrong proxy port give one clear line and exit 1")
    func badInput() async throws {
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        try await withCluster(try ClusterFixture(clusterName: "bad.example")) { cluster in
            var codes = try await Self.signUp(cluster, name: "ann", logins: "ann")
            let proxy = "127.0.0.1:\(cluster.webPort)"

            let untrusted = try await tsh.run(["login", "--proxy=\(proxy)", "--user=ann"])
            #expect(untrusted.exitCode == 1, "\(untrusted)")
            #expect(
                untrusted.stderr == "ERROR: the proxy's certificate is not trusted (self-signed?); use --insecure only if you know why\n",
                "\(untrusted)")

            let wrong = try await Self.login(
                tsh, ["--proxy=\(proxy)", "--user=ann", "--insecure"], user: "ann", password: "not the password",
                code: try await codes.next())
            #expect(wrong.status == 1, "\(wrong.transcript)")
            let errorLine = wrong.transcript.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
            #expect(errorLine.hasPrefix("ERROR: "), "\(wrong.transcript)")
            #expect(errorLine.lowercased().contains("password"), "\(wrong.transcript)")
            #expect(!FileManager.default.fileExists(atPath: tsh.tshHome.appendingPathComponent("current-profile").path))

            let refused = try await tsh.run(["login", "--proxy=127.0.0.1:\(cluster.authPort + 0)", "--user=ann", "--insecure"])
            #expect(refused.exitCode == 1, "\(refused)")
            #expect(refused.stderr.hasPrefix("ERROR: "), "\(refused)")
            #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused)")

            let noProxy = try await tsh.run(["login", "--user=ann"])
            #expect(noProxy.exitCode == 1 && noProxy.stderr.contains("--proxy"), "\(noProxy)")

            let badTTL = try await tsh.run(["login", "--proxy=\(proxy)", "--ttl=forever", "--insecure"])
            #expect(badTTL.exitCode == 1 && badTTL.stderr.contains("--ttl"), "\(badTTL)")

            let missingIdentity = try await tsh.run(["-i", tsh.home.appendingPathComponent("none").path, "status"])
            #expect(missingIdentity.exitCode == 1 && missingIdentity.stderr.contains("does not exist"), "\(missingIdentity)")
        }
    }
}
