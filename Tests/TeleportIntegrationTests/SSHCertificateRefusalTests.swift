import Crypto
import Foundation
import Logging
import TeleportAPI
import TeleportBackend
import TeleportBackendSQLite
import TeleportCrypto
import TeleportTestSupport
import Testing

/// The node's own certificate checks, end to end with OpenSSH `ssh`. The auth service only ever
/// registers certificates it issued correctly, so to reach the checks with a bad one this test
/// plays a compromised or buggy auth: it signs certificates with the cluster's CA keys (read with
/// `tctl get --with-secrets`) and writes them into the state database's certificate registry
/// itself. The node must refuse each one and log why; a correct one, written the same way, logs in.
@Suite("node certificate checks with OpenSSH ssh", .serialized)
struct SSHCertificateRefusalTests {
    struct Forger {
        let cluster: ClusterFixture
        let userCA: Curve25519.Signing.PrivateKey
        let hostCA: Curve25519.Signing.PrivateKey
        let work: URL

        /// What the auth service puts in a user certificate: the standard permissions, the preset
        /// `access` role and the traits it expands (`{{internal.logins}}` → root).
        static let extensions = SSHCertificate.standardUserExtensions.merging([
            "teleport-roles": #"{"roles":["access"],"version":"v1"}"#, "teleport-traits": #"{"logins":["root"]}"#,
        ]) { $1 }

        /// Signs a certificate for a new key, registers it, and returns the key's path.
        func register(
            _ name: String, type: SSHCertificate.CertType = .user, principals: [String] = ["root"], validAfter: TimeInterval = -60,
            validFor: TimeInterval = 600, criticalOptions: [String: String] = [:],
            extensions: [String: String] = Forger.extensions, signer: Curve25519.Signing.PrivateKey? = nil
        ) async throws -> String {
            let signingKey = Curve25519.Signing.PrivateKey()
            let key = OpenSSHPrivateKey(.ed25519(signingKey), comment: name)
            let now = Date()
            let certificate = try SSHCertificate.sign(
                publicKey: key.publicKey, type: type, serial: UInt64.random(in: 1...UInt64.max), keyID: name, validPrincipals: principals,
                validAfter: now.addingTimeInterval(validAfter), validBefore: now.addingTimeInterval(validFor),
                criticalOptions: criticalOptions, extensions: extensions, caKey: signer ?? userCA)
            let backend = try await SQLiteBackend.open(
                path: cluster.dataDir.appendingPathComponent("backend/sqlite.db").path, logger: Logger(label: "test"))
            let record = try JSONEncoder().encode(["certificate": certificate.authorizedKeyLine(comment: name)])
            try await backend.put(
                Item(key: "/usercerts/" + key.publicKey.fingerprintHex, value: record, expires: now.addingTimeInterval(3600)))
            try await backend.close()
            let path = work.appendingPathComponent(name).path
            try TestSupport.write(key.pemRepresentation(), to: URL(fileURLWithPath: path))
            return path
        }

        /// OpenSSH `ssh` straight to the node with only `key` (its plain public key: the server
        /// looks the certificate up in the registry).
        func ssh(_ key: String, _ arguments: [String]) async throws -> CommandResult {
            try await TestSupport.run(
                TestSupport.ssh,
                [
                    "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "-i", key, "-p", "\(cluster.sshPort)", "-l", "root",
                ] + arguments)
        }

        func logged(_ fragment: String) async -> Bool {
            for _ in 0..<50 {
                if cluster.log.contains(fragment) { return true }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return false
        }
    }

    static func caKey(_ cluster: ClusterFixture, _ type: String) async throws -> Curve25519.Signing.PrivateKey {
        let result = try await cluster.tctl(["get", "cert_authority/\(type)", "--with-secrets", "--format", "yaml"])
        let documents = try ResourceCodec.decodeDocuments(result.stdout, source: "tctl")
        guard case .certAuthority(let authority)? = documents.first, let pem = authority.spec.activeKeys.ssh.first?.privateKey,
            case .ed25519(let key) = try OpenSSHPrivateKey(pemRepresentation: pem).key
        else { throw TestSupportError("no Ed25519 key in cert_authority/\(type)") }
        return key
    }

    @Test("each bad certificate is refused with its reason; options and expiry are enforced", .timeLimit(.minutes(5)))
    func refusals() async throws {
        guard TestSupport.hasOpenSSHClient else { return }
        try await withCluster(try ClusterFixture(clusterName: "checks.example")) { cluster in
            try await cluster.start()
            #expect(await TestSupport.waitForPort(cluster.sshPort))
            let work = try TestSupport.makeTemporaryDirectory(prefix: "forge")
            defer { try? FileManager.default.removeItem(at: work) }
            let forger = Forger(
                cluster: cluster, userCA: try await Self.caKey(cluster, "user"), hostCA: try await Self.caKey(cluster, "host"), work: work)

            // The control: a correct certificate written the same way logs in.
            let good = try await forger.register("case-good")
            let accepted = try await forger.ssh(good, ["127.0.0.1", "echo accepted"])
            try #require(accepted.exitCode == 0 && accepted.stdout == "accepted\n", "\(accepted)\n\(cluster.log)")

            let otherCA = Curve25519.Signing.PrivateKey()
            let cases: [(String, String, String)] = [
                ("another CA", try await forger.register("case-other-ca", signer: otherCA), "which is not a trusted user CA"),
                ("the host CA", try await forger.register("case-host-ca", signer: forger.hostCA), "which is not a trusted user CA"),
                ("a host certificate", try await forger.register("case-host-type", type: .host), "is a host certificate where a user certificate is required"),
                ("expired", try await forger.register("case-expired", validAfter: -7200, validFor: -3600), "has expired"),
                ("not yet valid", try await forger.register("case-future", validAfter: 3600, validFor: 7200), "is not valid yet"),
                ("empty principals", try await forger.register("case-no-principals", principals: []), "lists no principals"),
                ("without the login", try await forger.register("case-other-login", principals: ["nobody"]), "is not valid for principal"),
                ("an unknown critical option", try await forger.register("case-option", criticalOptions: ["verify-required-x": ""]), "has unsupported critical option"),
                ("another source address", try await forger.register("case-source", criticalOptions: ["source-address": "10.1.2.3/32"]), "does not allow connections from"),
            ]
            for (what, key, reason) in cases {
                let refused = try await forger.ssh(key, ["127.0.0.1", "echo should-not-run"])
                #expect(refused.exitCode == 255 && refused.stderr.contains("Permission denied"), "\(what): \(refused)")
                #expect(!refused.stdout.contains("should-not-run"), "\(what)")
                #expect(await forger.logged(reason), "\(what): the node logs \(reason.debugDescription)")
            }
            // Self-signed: signed by its own key.
            let selfKey = Curve25519.Signing.PrivateKey()
            let selfPath = work.appendingPathComponent("case-self").path
            do {
                let key = OpenSSHPrivateKey(.ed25519(selfKey), comment: "case-self")
                let now = Date()
                let certificate = try SSHCertificate.sign(
                    publicKey: key.publicKey, type: .user, keyID: "case-self", validPrincipals: ["root"], validAfter: now.addingTimeInterval(-60),
                    validBefore: now.addingTimeInterval(600), extensions: SSHCertificate.standardUserExtensions, caKey: selfKey)
                let backend = try await SQLiteBackend.open(path: cluster.dataDir.appendingPathComponent("backend/sqlite.db").path, logger: Logger(label: "test"))
                try await backend.put(
                    Item(
                        key: "/usercerts/" + key.publicKey.fingerprintHex,
                        value: try JSONEncoder().encode(["certificate": certificate.authorizedKeyLine()]), expires: now.addingTimeInterval(3600)))
                try await backend.close()
                try TestSupport.write(key.pemRepresentation(), to: URL(fileURLWithPath: selfPath))
            }
            let selfSigned = try await forger.ssh(selfPath, ["127.0.0.1", "true"])
            #expect(selfSigned.exitCode == 255, "\(selfSigned)")
            #expect(await forger.logged("is self-signed"))

            // Options that are honoured: a matching source-address, force-command.
            let fromHere = try await forger.register("case-source-ok", criticalOptions: ["source-address": "10.0.0.0/8,127.0.0.1/32"])
            let here = try await forger.ssh(fromHere, ["127.0.0.1", "echo from-here"])
            #expect(here.stdout == "from-here\n", "\(here)")
            let forced = try await forger.register("case-forced", criticalOptions: ["force-command": "echo forced"])
            let forcedRun = try await forger.ssh(forced, ["127.0.0.1", "echo asked-for"])
            #expect(forcedRun.stdout == "forced\n", "\(forcedRun)")

            // Port forwarding needs permit-port-forwarding.
            var noForwarding = Forger.extensions
            noForwarding[SSHCertificate.permitPortForwarding] = nil
            let noForward = try await forger.register("case-no-forwarding", extensions: noForwarding)
            let local = try await forger.ssh(noForward, ["-W", "127.0.0.1:\(cluster.sshPort)", "127.0.0.1"])
            #expect(local.exitCode == 255 && !local.stdout.hasPrefix("SSH-2.0"), "\(local)")
            #expect(await forger.logged("refused port forwarding"))
            let remote = try await forger.ssh(noForward, ["-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9", "127.0.0.1", "echo should-not-run"])
            #expect(remote.exitCode == 255 && !remote.stdout.contains("should-not-run"), "\(remote)")
            #expect(await forger.logged("refused remote port forwarding"))
            // With the extension the same forward works (the control for the two above).
            let withForward = try await forger.ssh(good, ["-W", "127.0.0.1:\(cluster.sshPort)", "127.0.0.1"])
            #expect(withForward.stdout.hasPrefix("SSH-2.0"), "\(withForward)")

            // A certificate that expires mid-session ends the session. Its lifetime leaves room for a
            // slow start on a loaded machine (CI runs every suite at once on two cores): the session
            // must have started ("started" printed) before the cut, and the cut must come long
            // before the command's own end.
            let shortLived = try await forger.register("case-short", validFor: 10)
            let started = ContinuousClock.now
            let cut = try await forger.ssh(shortLived, ["127.0.0.1", "echo started; sleep 60; echo survived"])
            #expect(cut.stdout == "started\n" && cut.exitCode == 255, "\(cut)")
            #expect(ContinuousClock.now - started < .seconds(40))
            #expect(await forger.logged("the user's certificate expired"))

            // Every refusal above is an audit event with its reason.
            func text(_ event: [String: JSONValue], _ key: String) -> String { event[key]?.stringValue ?? "" }
            let reasons = cases.map(\.2) + ["is self-signed"]
            var events: [[String: JSONValue]] = []
            func complete() -> Bool {
                let authFailures = events.filter { text($0, "event") == "auth" && text($0, "code") == "T3007W" }
                let ports = events.filter { text($0, "event") == "port" && text($0, "code") == "T3003E" && text($0, "error").contains("not permitted") }
                return reasons.allSatisfy { reason in authFailures.contains { text($0, "error").contains(reason) } }
                    && ports.contains { text($0, "addr") == "127.0.0.1:\(cluster.sshPort)" }
                    && ports.contains { text($0, "addr") == "remote localhost:0" }
            }
            for _ in 0..<100 where !complete() {
                events = try await AuditEventsTests.events(cluster)
                if !complete() { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(complete(), "\(events.filter { text($0, "code") == "T3007W" || text($0, "code") == "T3003E" })")
            await cluster.stop()
        }
    }
}
