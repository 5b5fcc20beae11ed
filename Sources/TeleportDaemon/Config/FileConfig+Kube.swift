import Foundation
import TeleportAPI

extension FileConfig {
    /// `kubernetes_service: {enabled, listen_addr, kubeconfig_file, kube_cluster_name, labels, commands}`:
    /// checked now, with one line naming the key and the fix. The kubeconfig itself is read when
    /// the service starts (`KubeConfigFile`), which names the file and the entry at fault.
    mutating func parseKubeService(_ node: ConfigNode) throws {
        for (key, value) in try node.mapping() {
            switch key {
            case "enabled": kube.enabled = try value.bool()
            case "listen_addr":
                kube.listenAddr = try value.address(defaultPort: 3027)
                kube.listenAddrConfigured = true
            case "kubeconfig_file":
                let path = try value.string()
                guard !path.isEmpty else { throw value.fail("the path of a kubeconfig file, such as /etc/teleport/kubeconfig") }
                kube.kubeconfigFile = path
            case "kube_cluster_name":
                let name = try value.string()
                do {
                    try ResourceName.validate(name, kind: "kube_cluster_name")
                } catch {
                    throw value.fail("a cluster name of letters, digits, '-', '_' and '.', such as prod-cluster")
                }
                kube.kubeClusterName = name
            case "labels":
                for (label, labelValue) in try value.mapping() {
                    let text = try labelValue.string()
                    try LabelRules.check(key: label, source: "\(node.file): \(labelValue.path)")
                    try LabelRules.check(value: text, key: label, source: "\(node.file): \(labelValue.path)")
                    kube.labels[label] = text
                }
            case "commands":
                kube.commands = try Self.labelCommands(value, file: node.file)
            case "public_addr", "resources":
                warn(value, "not supported yet")
            default: throw Self.unknown(value, file: node.file)
            }
        }
        if kube.enabled, kube.kubeconfigFile == nil {
            throw TeleportError.badParameter(
                "\(node.file): kubernetes_service: kubeconfig_file is missing; name the kubeconfig whose contexts the service serves")
        }
    }

    /// The seed's `proxy_service.kubernetes: {enabled, listen_addr, public_addr, kubeconfig_file}`
    /// (Teleport 3/4): `enabled: yes` serves kubectl on `listen_addr` (default 0.0.0.0:3026, as
    /// `kube_listen_addr`); `kubeconfig_file` makes the proxy serve that kubeconfig's clusters (a
    /// Kubernetes service in the same process); without it the proxy serves the clusters of the
    /// cluster's Kubernetes services. `public_addr` is accepted with a warning.
    mutating func parseProxyKubernetes(_ value: ConfigNode, file: String) throws {
        var enabled = false
        var listen: String?
        var kubeconfig: String?
        for (key, entry) in try value.mapping() {
            switch key {
            case "enabled": enabled = try entry.bool()
            case "listen_addr": listen = try entry.address(defaultPort: 3026)
            case "kubeconfig_file":
                let path = try entry.string()
                guard !path.isEmpty else { throw entry.fail("the path of a kubeconfig file, such as /etc/teleport/kubeconfig") }
                kubeconfig = path
            case "public_addr": warn(entry, "the setting is not supported yet")
            default: throw Self.unknown(entry, file: file)
            }
        }
        guard enabled else { return }
        if proxy.kubeListenAddr == nil { proxy.kubeListenAddr = listen ?? "0.0.0.0:3026" }
        proxy.kubernetesKubeconfigFile = kubeconfig
    }
}
