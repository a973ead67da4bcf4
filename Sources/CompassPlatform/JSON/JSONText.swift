import ByteScan

/// JSON string literals written by hand (RFC 8259 section 7), byte by byte, for the places
/// that build JSON text without an encoder.
package enum JSONText {
    package static func appendQuoted(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { appendQuoted(utf8: $0, to: &out) }
    }

    /// `bytes`, valid UTF-8, as a string literal: pieces of 128 bytes quoted on the stack (1 KiB
    /// holds what six-byte escapes and a store past the end make of one; Swift gives a larger
    /// temporary buffer a heap block instead) and each appended in one copy (in JSON text quoted
    /// again there is a quote every few bytes, and appending a run per escape cost most of the
    /// time).
    package static func appendQuoted(utf8 bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { buffer in
            var start = 0
            while start < bytes.count {
                let piece = UnsafeBufferPointer(rebasing: bytes[start..<min(start + 128, bytes.count)])
                let count = writeEscaped(utf8: piece, to: buffer.baseAddress!)
                out.append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress!, count: count))
                start += piece.count
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// How much room `bytes` needs as a string literal written by `writeQuoted`: its two quotes,
    /// twice its length (six times with a control character) and the 16 bytes a store may write
    /// past the end; and whether all of it is ASCII. A pass the compiler turns into
    /// vector instructions, for a caller that writes the literal straight into its place:
    /// counting the escapes exactly cost more than the copy it saved.
    package static func quotedBound(utf8 bytes: UnsafeBufferPointer<UInt8>) -> (bound: Int, isASCII: Bool) {
        var high: UInt8 = 0
        var low: UInt8 = 0xFF
        for byte in bytes {
            high |= byte
            low = min(low, byte)
        }
        return ((low < 0x20 ? 6 : 2) * bytes.count + 2 + 16, high < 0x80)
    }

    /// `bytes`, valid UTF-8, as a string literal at `destination`, which has room for
    /// `quotedBound(utf8: bytes).bound` bytes; returns how many it wrote.
    package static func writeQuoted(utf8 bytes: UnsafeBufferPointer<UInt8>, to destination: UnsafeMutablePointer<UInt8>) -> Int {
        destination[0] = UInt8(ascii: "\"")
        let count = 1 + writeEscaped(utf8: bytes, to: destination + 1)
        destination[count] = UInt8(ascii: "\"")
        return count + 1
    }

    /// `bytes` escaped as a string literal's inside, at `chunk`; returns how many bytes that is.
    /// `compass_escape` (ByteScan): sixteen bytes at a time with SSE2, each run between quotes
    /// and backslashes stored whole (in JSON text quoted again, most words hold a quote): 3,700
    /// instructions an event for the answer of a 1000-event dry run under callgrind, where eight
    /// at a time in a word took 7,700. A store may write up to 15 bytes past the escaped text's
    /// end.
    private static func writeEscaped(utf8 bytes: UnsafeBufferPointer<UInt8>, to chunk: UnsafeMutablePointer<UInt8>) -> Int {
        guard let source = bytes.baseAddress else { return 0 }
        return compass_escape(source, bytes.count, chunk)
    }

    package static func quoted(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 2)
        appendQuoted(text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    /// The literal's bytes appended (a string literal's `.utf8` goes through the view's generic
    /// walk): a short one byte by byte, which costs less than the call that copies a buffer (most
    /// literals of a payload are two to five bytes), a longer one in one copy.
    @inlinable
    package mutating func append(literal: StaticString) {
        let count = literal.utf8CodeUnitCount
        let bytes = literal.utf8Start
        guard count > 8 else {
            for offset in 0..<count { append(bytes[offset]) }
            return
        }
        append(contentsOf: UnsafeBufferPointer(start: bytes, count: count))
    }
}

extension Array where Element == UInt8 {
    /// `count` bytes appended in one append and written in place through the cursor `write` is
    /// given, which must put exactly that many: for a caller that joins many short pieces, where
    /// an append a piece (each a call and a uniqueness check) cost more than counting them first.
    /// The room is the array's own, uninitialized (`append(addingCapacity:)`): nothing is copied
    /// or zeroed first.
    @inlinable
    package mutating func append(count: Int, writing write: (inout ByteCursor) -> Void) {
        guard count > 0 else { return }
        append(addingCapacity: count) { span in
            span.withUnsafeMutableBufferPointer { room, initialized in
                guard let start = room.baseAddress else { return }
                var cursor = ByteCursor(at: start)
                write(&cursor)
                // Checked in debug builds, where the tests run the writers over random events.
                assert(cursor.at - start == count, "the writer put \(cursor.at - start) bytes of \(count)")
                initialized = cursor.at - start
            }
        }
    }
}

/// Where the next byte goes, in room its owner made (`Array.append(count:writing:)`).
@usableFromInline package struct ByteCursor {
    @usableFromInline package var at: UnsafeMutablePointer<UInt8>

    @inlinable package init(at: UnsafeMutablePointer<UInt8>) { self.at = at }

    @inlinable
    package mutating func put(_ byte: UInt8) {
        at.pointee = byte
        at += 1
    }

    @inlinable
    package mutating func put(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        at.update(from: source, count: bytes.count)
        at += bytes.count
    }
}

extension Array where Element == UInt8 {
    /// `value` in decimal, as `String(value)` writes it, without making the String.
    package mutating func append(decimal value: Int64) {
        var magnitude = value.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(48 + magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 { append(UInt8(ascii: "-")) }
            append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }
}
