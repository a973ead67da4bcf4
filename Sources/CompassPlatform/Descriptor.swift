#if canImport(Glibc)
    import Glibc
#endif

/// Writing to a file descriptor (standard output, a log, a socket, a record file).
package enum Descriptor {
    /// Writes every byte, going on after a signal interrupts `write`. Returns 0, or the errno that
    /// stopped it (EIO when the descriptor took nothing).
    @discardableResult
    package static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) -> Int32 {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return written < 0 ? errno : EIO }
                offset += written
            }
            return 0
        }
    }
}
