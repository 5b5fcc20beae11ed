public import Foundation

/// The status message that ends a Kubernetes `exec`/`attach` stream (channel 3 of
/// `v5.channel.k8s.io`): read by the Kubernetes service (audit, recording) and by `tsh` joining a
/// live session.
public enum KubeExecStatus {
    /// 0 for `Success`, the `ExitCode` cause of a `NonZeroExitCode`; nil when the message names none.
    public static func exitCode(_ payload: some Collection<UInt8>) -> Int? {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any] else { return nil }
        if object["status"] as? String == "Success" { return 0 }
        let causes = ((object["details"] as? [String: Any])?["causes"] as? [[String: Any]]) ?? []
        return causes.first { $0["reason"] as? String == "ExitCode" }.flatMap { ($0["message"] as? String).flatMap { Int($0) } }
    }
}
