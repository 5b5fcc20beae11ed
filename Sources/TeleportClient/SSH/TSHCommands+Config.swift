import Foundation
public import TeleportAPI

extension TSHCommands {
    /// `tsh config`: an ssh_config block so that plain OpenSSH `ssh`, `scp` and `sftp` reach the
    /// cluster's nodes as `NODE.CLUSTER` through the proxy, with the profile's key and certificate
    /// and host keys from the cluster (via `tsh known-hosts`, never trust on first use). Each leaf
    /// cluster that trusts this one (trusted clusters, `tsh clusters`) gets a block of its own for
    /// `NODE.LEAF`, through `tsh proxy ssh --cluster=LEAF` and the leaf's host keys.
    public static func config(_ options: ClientOptions, tshPath: String, context: ClientContext) async throws -> Outcome {
        guard let name = try context.store.currentProfileName() else {
            throw TeleportError.accessDenied("not logged in: run tsh login --proxy=HOST first")
        }
        let profile = try context.store.loadProfile(name)
        let paths = context.store.keyPaths(profile: profile.name, user: profile.user)
        let (leaves, note) = await leafClusterNames(options, context: context)
        let setting = ConfigSetting(
            key: paths.sshKey.path, certificate: paths.sshCertificate.path, home: context.store.home.path, tsh: tshPath,
            proxy: profile.webProxyAddress.hostPort)
        var text = """
            # Begin generated Teleport configuration for \(profile.webProxyAddress.hostPort)
            # Cluster \(profile.cluster): reach a node with  ssh LOGIN@NODE.\(profile.cluster)
            # Offer the plain key (IdentityFile) as well as the certificate: this cluster's nodes and
            # proxy check the certificate registered for the key and refuse certificate-only offers
            # (paramiko load_certificate alone, PuTTY/plink -cert). Its nodes present plain host keys,
            # so an @cert-authority line alone does not verify them: host keys come from tsh known-hosts
            # (it lists the proxy's key too; tsh known-hosts > FILE serves ssh -J PROXY:PORT and others).

            """
        if let note { text += "# \(note)\n" }
        // Leaf blocks first: ssh takes the first value it finds, and a leaf may be named
        // LEAF.ROOT (its nodes then match the root's pattern too).
        for leaf in leaves.sorted(by: { $0.count > $1.count }) {
            text += "# Leaf cluster \(leaf) (trusts \(profile.cluster)): ssh LOGIN@NODE.\(leaf)\n"
            text += hostBlock(pattern: leaf, cluster: leaf, setting)
        }
        text += hostBlock(pattern: profile.cluster, cluster: profile.cluster, setting)
        text += "# End generated Teleport configuration\n"
        return Outcome(output: text)
    }

    /// What every block of `tsh config` names.
    struct ConfigSetting {
        var key: String
        var certificate: String
        var home: String
        var tsh: String
        var proxy: String
    }

    /// One `Host *.PATTERN` block reaching `cluster`'s nodes (`--cluster` for a leaf's).
    static func hostBlock(pattern: String, cluster: String, _ setting: ConfigSetting) -> String {
        func quoted(_ text: String) -> String { "\"\(text)\"" }
        let tsh = "/usr/bin/env TELEPORT_HOME=\(quoted(setting.home)) \(quoted(setting.tsh)) --proxy=\(setting.proxy)"
        return """
            Host *.\(pattern)
                Port 3022
                IdentityFile \(quoted(setting.key))
                CertificateFile \(quoted(setting.certificate))
                IdentitiesOnly yes
                UserKnownHostsFile /dev/null
                KnownHostsCommand \(tsh) known-hosts --cluster=\(cluster) %H
                StrictHostKeyChecking yes
                ProxyCommand \(tsh) proxy ssh --cluster=\(cluster) %r@%h:%p

            """
    }

    /// The leaf clusters the proxy lists for this user (`tsh clusters`), whose names are safe in
    /// an ssh_config pattern; with a note when some are left out or the list cannot be read (the
    /// root's own block is written all the same).
    static func leafClusterNames(_ options: ClientOptions, context: ClientContext) async -> (names: [String], note: String?) {
        let entries: [WebAPI.ClusterEntry]
        do {
            let session = try session(options, context: context)
            let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
            entries = try await web.clusters()
        } catch {
            return ([], "Leaf clusters could not be listed (\((error as? TeleportError)?.message ?? "\(error)")): only this cluster's block.")
        }
        let leaves = entries.filter { $0.type == "leaf" }.map(\.name)
        let safe = leaves.filter(isPatternSafe)
        let skipped = leaves.count - safe.count
        return (safe, skipped == 0 ? nil : "\(skipped) leaf cluster name(s) with characters ssh_config cannot hold were left out.")
    }

    /// Whether a cluster name can stand in an ssh_config `Host` pattern and a command line as is:
    /// letters, digits, `.`, `-` and `_` only (no space, quote, wildcard or newline).
    static func isPatternSafe(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "." || scalar == "-" || scalar == "_")
        }
    }
}
