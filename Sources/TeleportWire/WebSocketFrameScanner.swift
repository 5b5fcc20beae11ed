/// Reads WebSocket frames (RFC 6455) out of a relayed byte stream without changing it: the
/// Kubernetes service watches `exec`/`attach` streams (`v5.channel.k8s.io`, `v4.channel.k8s.io`)
/// to record their output and resizes. Payloads are unmasked; each frame's payload is kept up to
/// ``payloadLimit`` bytes (the rest is counted and dropped), so memory stays bounded whatever the
/// peer sends.
public struct WebSocketFrameScanner: Sendable {
    /// One frame.
    public struct Frame: Sendable, Equatable {
        /// The FIN bit.
        public var fin: Bool
        /// The opcode (0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong).
        public var opcode: UInt8
        /// The payload, unmasked, at most ``WebSocketFrameScanner/payloadLimit`` bytes.
        public var payload: [UInt8]
        /// The payload's full length.
        public var length: Int
    }

    /// The most of one frame's payload kept.
    public let payloadLimit: Int
    var header: [UInt8] = []
    var remaining = 0
    var length = 0
    var mask: [UInt8] = []
    var payload: [UInt8] = []
    var fin = false
    var opcode: UInt8 = 0
    var inPayload = false
    var offset = 0

    /// Creates a scanner at a frame boundary.
    public init(payloadLimit: Int = 64 * 1024) { self.payloadLimit = payloadLimit }

    /// Feeds raw bytes: the relay's path, one concrete type so that release builds specialize the
    /// byte loop (the generic ``feed(_:)`` called across modules is not specialized).
    public mutating func feed(raw bytes: UnsafeRawBufferPointer) throws -> [Frame] {
        try feed(bytes)
    }

    /// Feeds bytes; returns the frames completed by them.
    ///
    /// - Throws: ``HTTP1Error`` for a frame whose length is not minimal-encoded or is absurd.
    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) throws -> [Frame] where Bytes.Element == UInt8 {
        var frames: [Frame] = []
        for byte in bytes {
            if inPayload {
                if payload.count < payloadLimit { payload.append(mask.isEmpty ? byte : byte ^ mask[offset & 3]) }
                offset += 1
                remaining -= 1
                if remaining == 0 { frames.append(finish()) }
                continue
            }
            header.append(byte)
            guard header.count >= 2 else { continue }
            let masked = header[1] & 0x80 != 0
            let short = Int(header[1] & 0x7F)
            let extended = short == 126 ? 2 : short == 127 ? 8 : 0
            let needed = 2 + extended + (masked ? 4 : 0)
            guard header.count == needed else { continue }
            fin = header[0] & 0x80 != 0
            opcode = header[0] & 0x0F
            var total = short
            if extended > 0 {
                total = 0
                for index in 2..<(2 + extended) { total = total << 8 | Int(header[index]) }
                if extended == 8, header[2] & 0x80 != 0 { throw HTTP1Error("a WebSocket frame length has its top bit set") }
                if total < 0 || total > 1 << 40 { throw HTTP1Error("a WebSocket frame is longer than 1 TiB") }
            }
            mask = masked ? Array(header[(2 + extended)...]) : []
            header = []
            length = total
            remaining = total
            offset = 0
            payload = []
            if total == 0 {
                frames.append(finish())
            } else {
                inPayload = true
            }
        }
        return frames
    }

    mutating func finish() -> Frame {
        inPayload = false
        let frame = Frame(fin: fin, opcode: opcode, payload: payload, length: length)
        payload = []
        return frame
    }
}
