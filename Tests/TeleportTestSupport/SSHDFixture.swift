public import Foundation

#if canImport(Glibc)
    public import Glibc
#endif

/// A real OpenSSH `sshd` on a free loopback port that trusts the user CA keys in `trustedUserCAKeys`
/// (the file's text, as `TrustedUserCAKeys`), for interop tests. Needs root and openssh-server.
public final class SSHDFixture: @unchecked Sendable {
    /// The work directory.
    public let directory: URL
    /// The port sshd listens on.
    public let port: UInt16
    private var pid: pid_t?

    /// True when sshd can run here.
    public static var available: Bool {
        FileManager.default.isExecutableFile(atPath: TestSupport.sshd) && TestSupport.hasOpenSSHClient && getuid() == 0
    }

    /// Starts sshd and waits until it listens.
    ///
    /// With `hostKey`, sshd uses that key and presents `HOSTKEY-cert.pub` as its host certificate
    /// (as `tctl auth sign --host --format=openssh` writes them); otherwise it makes a key of its own.
    public init(trustedUserCAKeys: String, hostKey givenHostKey: String? = nil) async throws {
        directory = try TestSupport.makeTemporaryDirectory(prefix: "sshd")
        port = try TestSupport.freeLoopbackPort()
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        var hostKey = directory.appendingPathComponent("host").path
        var hostCertificate = ""
        if let givenHostKey {
            hostKey = givenHostKey
            hostCertificate = "HostCertificate \(givenHostKey)-cert.pub"
        } else {
            try await TestSupport.runChecked(TestSupport.sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-f", hostKey])
        }
        let caFile = directory.appendingPathComponent("user_ca.pub")
        try TestSupport.write(trustedUserCAKeys, to: caFile)
        let config = directory.appendingPathComponent("sshd_config")
        try TestSupport.write(
            """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(hostKey)
            \(hostCertificate)
            Subsystem sftp /usr/lib/openssh/sftp-server
            TrustedUserCAKeys \(caFile.path)
            AuthorizedKeysFile none
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            UsePAM no
            StrictModes no
            PidFile \(directory.appendingPathComponent("sshd.pid").path)
            LogLevel VERBOSE

            """, to: config)
        let pid = try TestSupport.spawnDaemon(
            TestSupport.sshd, ["-D", "-e", "-f", config.path], logPath: directory.appendingPathComponent("sshd.log").path)
        self.pid = pid
        guard await TestSupport.waitForPort(port) else {
            await stop()
            throw TestSupportError("sshd did not start")
        }
    }

    /// Runs `ssh -i KEY -o CertificateFile=CERT -p PORT LOGIN@127.0.0.1 COMMAND`.
    public func ssh(key: String, certificate: String, login: String, command: String) async throws -> CommandResult {
        try await TestSupport.run(
            TestSupport.ssh,
            [
                "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o",
                "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "-i", key,
                "-o", "CertificateFile=\(certificate)", "-p", String(port), "\(login)@127.0.0.1", command,
            ])
    }

    /// sshd's log.
    public var log: String { (try? String(contentsOf: directory.appendingPathComponent("sshd.log"), encoding: .utf8)) ?? "" }

    /// Stops sshd by PID and removes the directory.
    public func stop() async {
        if let pid {
            self.pid = nil
            await TestSupport.stopDaemon(pid)
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A plain error with a message, for fixtures.
public struct TestSupportError: Error, CustomStringConvertible {
    public var description: String
    /// Creates an error.
    public init(_ description: String) { self.description = description }
}
