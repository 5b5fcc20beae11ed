/// Writes WebSocket frames (RFC 6455): a server's frames unmasked, a client's masked with the
/// 4-byte key it is given. Used where the Kubernetes service and `tsh` speak the `exec` stream
/// protocol (`v5.channel.k8s.io`) themselves: joining a live Kubernetes session.
public enum WebSocketFrameEncoder {
    /// Opcodes.
    public static let binary: UInt8 = 2
    public static let close: UInt8 = 8
    public static let pong: UInt8 = 10

    /// One frame (FIN set unless `fin` is false); `mask` (4 bytes) for frames a client sends.
    public static func frame(opcode: UInt8, payload: some Collection<UInt8>, mask: [UInt8]? = nil, fin: Bool = true) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | (opcode & 0x0F)]
        let maskBit: UInt8 = mask == nil ? 0 : 0x80
        let count = payload.count
        if count < 126 {
            bytes.append(maskBit | UInt8(count))
        } else if count <= 0xFFFF {
            bytes.append(maskBit | 126)
            bytes.append(UInt8(count >> 8))
            bytes.append(UInt8(count & 0xFF))
        } else {
            bytes.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((UInt64(count) >> UInt64(shift)) & 0xFF)) }
        }
        guard let mask, mask.count == 4 else {
            bytes.append(contentsOf: payload)
            return bytes
        }
        bytes.append(contentsOf: mask)
        bytes.reserveCapacity(bytes.count + count)
        for (index, byte) in payload.enumerated() { bytes.append(byte ^ mask[index & 3]) }
        return bytes
    }

    /// A `v5.channel.k8s.io` data frame: the channel byte (0 stdin, 1 stdout, 2 stderr, 3 status,
    /// 4 resize, 255 close) then the data, as a binary frame.
    public static func channel(_ channel: UInt8, _ data: some Collection<UInt8>, mask: [UInt8]? = nil) -> [UInt8] {
        var payload: [UInt8] = [channel]
        payload.append(contentsOf: data)
        return frame(opcode: binary, payload: payload, mask: mask)
    }

    /// A fresh random masking key.
    public static func newMask() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}
