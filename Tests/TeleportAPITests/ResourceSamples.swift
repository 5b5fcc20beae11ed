import Foundation
import TeleportAPI

/// One fully populated value of each resource kind, for round trips.
enum ResourceSamples {
    static let created = Date(timeIntervalSince1970: 1_486_104_845)

    static let sshPrivateKey = """
        -----BEGIN OPENSSH PRIVATE KEY-----
        b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
        QyNTUxOQAAACBnZXJhbGRpbmUtZXhhbXBsZS1rZXktbm90LXJlYWwtMDEyMzQ1Njc4OQAA
        -----END OPENSSH PRIVATE KEY-----

        """

    static let certificatePEM = """
        -----BEGIN CERTIFICATE-----
        MIIBnTCCAUOgAwIBAgIUZXhhbXBsZS1jZXJ0aWZpY2F0ZS1ub3QtcmVhbDAKBggqhkjO
        PQQDAjAlMSMwIQYDVQQDDBp0ZWxlcG9ydC1hd3MtdXMtZWFzdC0xIENBMB4XDTE3MDIw
        -----END CERTIFICATE-----

        """

    static let pkcs8PEM = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZXhhbXBsZS1wcml2YXRl
        LWtleS1ub3QtcmVhbC0wMTIzNDU2Nzg5YWJjZGVmZ2hpams=
        -----END PRIVATE KEY-----

        """

    static var user: User {
        var user = User(name: "joe", roles: ["admin", "dev"], logins: ["joe", "root"])
        user.metadata.description = "Joe, the on-call engineer"
        user.metadata.labels = ["team": "ops", "env": "prod"]
        user.metadata.expires = Date(timeIntervalSince1970: 1_900_000_000)
        user.spec.traits["kubernetes_groups"] = ["system:masters"]
        user.spec.status = User.Status(isLocked: true, lockedTime: created, lockExpires: Date(timeIntervalSince1970: 1_486_108_445))
        user.spec.createdBy = User.CreatedBy(time: created, user: "builtin-Admin")
        return user
    }

    static var role: Role {
        var options = Role.Options(maxSessionTTL: "30h", forwardAgent: true, portForwarding: false)
        options.sshFileCopy = true
        options.clientIdleTimeout = "15m0s"
        options.disconnectExpiredCert = false
        var role = Role(
            name: "dev",
            spec: Role.Spec(
                options: options,
                allow: Role.Conditions(
                    logins: ["ubuntu", "ec2-user"],
                    nodeLabels: ["env": LabelValues(["staging", "dev"]), "*": LabelValues(["*"]), "region": LabelValues(["^us-.*$"])],
                    rules: [Role.Rule(resources: ["node", "role"], verbs: ["list", "read"])], dbLabels: ["env": LabelValues(["dev"])],
                    dbUsers: ["{{internal.db_users}}", "alice"], dbNames: ["postgres"]),
                deny: Role.Conditions(logins: ["root"], nodeLabels: ["env": LabelValues(["prod"])])))
        role.metadata.description = "developers"
        return role
    }

    static var token: ProvisionToken {
        ProvisionToken(
            name: "a8f3b2c1d4e5", roles: [.node, .proxy],
            metadata: Metadata(name: "ignored", expires: Date(timeIntervalSince1970: 1_486_106_645)))
    }

    static var node: ServerNode {
        var node = ServerNode(
            uuid: "f84f7386-5e22-45ff-8f7d-b8079742e63f", hostname: "graviton", addr: "10.5.1.15:3022",
            labels: ["datacenter": "us-east-1", "role": "master"])
        node.spec.cmdLabels = [
            "arch": ServerNode.CommandLabelResult(period: "1h0m0s", command: ["/usr/bin/uname", "-p"], result: "x86_64"),
            "hostname": ServerNode.CommandLabelResult(period: "1m0s", command: ["/usr/bin/hostname"], result: "graviton"),
        ]
        node.spec.version = "0.1.0"
        node.spec.hostKeyFingerprint = "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"
        return node
    }

    static var certAuthority: CertAuthority {
        var ca = CertAuthority(
            type: .host, clusterName: "teleport-aws-us-east-1",
            activeKeys: CertAuthority.KeySet(
                ssh: [
                    CertAuthority.SSHKeyPair(
                        publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGeraldine host-ca", privateKey: sshPrivateKey)
                ],
                tls: [CertAuthority.TLSKeyPair(cert: certificatePEM, key: pkcs8PEM)]))
        ca.spec.rotation = CertAuthority.Rotation(state: "standby", phase: "standby", lastRotated: created)
        return ca
    }

    static var clusterName: ClusterNameResource {
        ClusterNameResource(clusterName: "teleport-aws-us-east-1", clusterID: "8d3895b6-e9dd-11e6-94de-40167e68e931")
    }

    static var lock: Lock {
        Lock(name: "c6f2a1d0-5b1e-4f5e-9d4e-1a2b3c4d5e6f", target: .init(user: "joe"), message: "incident 42", expires: created.addingTimeInterval(3600))
    }

    static var database: DatabaseServer {
        DatabaseServer(
            name: "sales", labels: ["env": "dev"],
            spec: .init(
                protocol: .postgres, uri: "db.example.com:5432", description: "the sales database", hostID: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e",
                hostname: "dbhost", dynamicLabels: ["uptime": .init(period: "1m", command: ["uptime"], result: "up")], version: "0.1.0"))
    }

    static var app: AppServer {
        var app = AppServer(
            name: "grafana", labels: ["env": "dev"],
            spec: .init(
                uri: "http://localhost:3000", publicAddr: "grafana.proxy.example.com", description: "dashboards",
                hostID: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4f", hostname: "apphost", version: "0.1.0"))
        app.spec.addr = "10.0.0.5:3031"
        return app
    }

    static var proxy: ServerProxy {
        var proxy = ServerProxy(
            uuid: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", hostname: "proxy-2", addr: "lb.example.com:3080", publicAddr: "lb.example.com:3080")
        proxy.spec.version = "0.1.0"
        return proxy
    }

    /// Every kind, as `tctl get all` would list them.
    static var all: [AnyResource] {
        [
            .clusterName(clusterName), .certAuthority(certAuthority), .role(role), .user(user), .token(token), .node(node), .lock(lock),
            .registered(proxy), .registered(database), .registered(app), .registered(kube), .registered(oidc), .registered(github),
            .registered(trustedCluster), .registered(remoteCluster),
        ]
    }

    /// A leaf's trust in a root, as stored (no token).
    static let trustedCluster = TrustedCluster(
        name: "root.example",
        spec: .init(
            enabled: true, token: nil, webProxyAddr: "root.example:3080", tunnelAddr: "root.example:3024",
            roleMap: [.init(remote: "^team-(.*)$", local: ["leaf-$1"]), .init(remote: "admin", local: ["access"])]))

    /// A root's record of a leaf.
    static let remoteCluster = RemoteCluster(
        name: "leaf.example", status: .init(connection: "online", lastHeartbeat: Date(timeIntervalSince1970: 1_800_000_000)))

    /// A Kubernetes cluster reached through its service's tunnel.
    static let kube = KubeServer(
        name: "prod-cluster", labels: ["env": "prod"],
        spec: .init(hostID: "8c9b3f1e-5d2a-4c71-9e0f-2b6a7d4c1e93", hostname: "kubehost", version: "1.0.0", addr: nil, useTunnel: true))

    /// An OIDC connector with every optional field.
    static let oidc = OIDCConnector(
        name: "okta",
        spec: .init(
            issuerURL: "https://example.okta.com", clientID: "0oa1", clientSecret: "s", redirectURL: "https://proxy.example.com:3080/v1/webapi/oidc/callback",
            scope: ["email", "groups"], claimsToRoles: [.init(claim: "groups", value: "^admins$", roles: ["access"])], display: "Okta",
            prompt: "select_account", maxAge: 3600, acrValues: "silver"))

    /// A GitHub Enterprise connector.
    static let github = GitHubConnector(
        name: "github",
        spec: .init(
            clientID: "Iv1", clientSecret: "s", display: "GitHub", redirectURL: "https://proxy.example.com:3080/v1/webapi/github/callback",
            teamsToLogins: [.init(organization: "octocats", team: "admins", logins: ["root"], kubernetesGroups: ["system:masters"])],
            teamsToRoles: [.init(organization: "octocats", team: "auditors", roles: ["auditor"])], endpointURL: "https://github.example.com",
            apiEndpointURL: "https://github.example.com/api/v3"))
}
