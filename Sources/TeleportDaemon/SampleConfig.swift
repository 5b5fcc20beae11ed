/// The commented sample `teleport.yaml` that `teleport configure` prints. It loads as it is: a test
/// parses it.
public enum SampleConfig {
    /// The sample, for a single-node cluster (auth, proxy and node on one host).
    public static func text(nodeName: String, dataDir: String, clusterName: String) -> String {
        let nodeName = quoted(nodeName)
        let clusterName = quoted(clusterName)
        let logURI = quoted("file://\(dataDir)/log")
        let dataDir = quoted(dataDir)
        return """
        #
        # A sample Teleport configuration file, made by `teleport configure`.
        # It creates a single-node cluster: auth, proxy and node on this host.
        #
        # Things to update:
        #  1. cluster_name: choose it before the first start; it cannot change later.
        #  2. ca_pin: on other hosts that join this cluster, put the pin that `tctl status` prints.
        #
        teleport:
          # The name this node is reached by; defaults to the host name.
          nodename: \(nodeName)

          # Where Teleport keeps its state, keys and audit log. Keep it private (0700).
          data_dir: \(dataDir)

          # Logging: output is stderr, stdout or a file path; severity is DEBUG, INFO, WARN or ERROR.
          log:
            output: stderr
            severity: INFO

          # The cluster state backend: sqlite (embedded, in data_dir), etcd or postgresql (several auth servers;
          # postgresql takes conn_string: postgresql://USER@HOST:5432/DB?sslmode=verify-full&sslrootcert=CA&sslcert=CERT&sslkey=KEY).
          storage:
            type: sqlite
            # Where audit events go; several places at once are allowed.
            audit_events_uri: [\(logURI)]

          # Only for hosts that join an existing cluster:
          # auth_token: xxxx-token-xxxx
          # ca_pin: "sha256:ca-pin-hash-goes-here"
          # auth_servers:
          #   - 10.1.0.5:3025

          connection_limits:
            max_connections: 15000
            max_users: 250

        auth_service:
          enabled: "yes"
          # The cluster name is part of every certificate; changing it later invalidates them all.
          cluster_name: \(clusterName)
          # The auth API: other hosts of the cluster connect here.
          listen_addr: 0.0.0.0:3025
          # Static join tokens, "roles:token". Prefer short-lived ones from `tctl nodes add`.
          # tokens:
          #   - "proxy,node:xxxx-token-xxxx"
          authentication:
            # local, oidc or github: what `tsh login` uses without --auth (docs/sso.md).
            type: local
            # connector_name: okta
            # local_auth: false refuses password logins (single sign-on only).
            # local_auth: true
            # second_factor can be off or otp.
            second_factor: otp

        ssh_service:
          enabled: "yes"
          listen_addr: 0.0.0.0:3022
          labels:
            env: example
          # Dynamic labels: a command run every period (at least 1m); its output is the label's value.
          commands:
          - name: hostname
            command: [hostname]
            period: 1m0s

        proxy_service:
          enabled: "yes"
          # SSH clients connect here.
          listen_addr: 0.0.0.0:3023
          # HTTPS for tsh logins and the web UI.
          web_listen_addr: 0.0.0.0:3080
          tunnel_listen_addr: 0.0.0.0:3024
          # The address users reach the proxy at (a load balancer's, when there is one).
          # public_addr: teleport.example.com:3080
          # The HTTPS certificate; a self-signed one is made when this is not set.
          # https_keypairs:
          #   - key_file: /var/lib/teleport/webproxy_key.pem
          #     cert_file: /var/lib/teleport/webproxy_cert.pem

        """
    }

    /// A YAML double-quoted string.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if scalar.value < 0x20 { out += String(format: "\\x%02X", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}

import Foundation
