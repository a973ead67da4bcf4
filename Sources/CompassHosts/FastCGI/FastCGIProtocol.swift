import CompassPlatform

/// The FastCGI 1.0 protocol as a responder speaks it: records in, requests out, answers back as
/// records. Pure bytes, no sockets: the connection loop (`FastCGIHost`) feeds it what it reads,
/// and the fuzz target feeds it anything.
package enum FastCGI {
    package static let version: UInt8 = 1
    package static let headerSize = 8
    /// Content per record: the length field is 16 bits.
    package static let maxContent = 65_535

    package enum RecordType: UInt8 {
        case beginRequest = 1
        case abortRequest = 2
        case endRequest = 3
        case params = 4
        case stdin = 5
        case stdout = 6
        case stderr = 7
        case data = 8
        case getValues = 9
        case getValuesResult = 10
        case unknownType = 11
    }

    package enum ProtocolStatus: UInt8 {
        case requestComplete = 0
        case cantMultiplexConnections = 1
        case overloaded = 2
        case unknownRole = 3
    }

    package static let responderRole: UInt16 = 1
    package static let keepConnection: UInt8 = 1

    package struct Record: Equatable, Sendable {
        package var type: UInt8
        package var requestId: UInt16
        package var content: [UInt8]

        package init(type: UInt8, requestId: UInt16, content: [UInt8]) {
            self.type = type
            self.requestId = requestId
            self.content = content
        }
    }

    /// Malformed input: the connection is closed (the process stays).
    package struct Failure: Error, Equatable {
        package var reason: String
    }

    /// Splits a byte stream into records as they complete; what is left waits for more bytes.
    package struct RecordReader {
        private var buffer: [UInt8] = []
        private var start = 0

        package init() {}

        package mutating func append(_ bytes: some Sequence<UInt8>) { buffer.append(contentsOf: bytes) }

        package mutating func next() throws(Failure) -> Record? {
            guard buffer.count - start >= FastCGI.headerSize else { return nil }
            guard buffer[start] == FastCGI.version else { throw Failure(reason: "unknown FastCGI version \(buffer[start])") }
            let type = buffer[start + 1]
            let requestId = UInt16(buffer[start + 2]) << 8 | UInt16(buffer[start + 3])
            let length = Int(buffer[start + 4]) << 8 | Int(buffer[start + 5])
            let padding = Int(buffer[start + 6])
            let total = FastCGI.headerSize + length + padding
            guard buffer.count - start >= total else { return nil }
            let content = Array(buffer[(start + FastCGI.headerSize)..<(start + FastCGI.headerSize + length)])
            start += total
            if start > 1 << 16 {
                buffer.removeFirst(start)
                start = 0
            }
            return Record(type: type, requestId: requestId, content: content)
        }
    }

    /// FastCGI name-value pairs (section 3.4): each length in one byte, or four with the high
    /// bit set. A repeated name keeps its last value.
    package static func decodePairs(_ bytes: [UInt8]) throws(Failure) -> [(String, String)] {
        var pairs: [(String, String)] = []
        var index = 0
        func length() throws(Failure) -> Int {
            guard index < bytes.count else { throw Failure(reason: "name-value pair cut short") }
            if bytes[index] & 0x80 == 0 {
                index += 1
                return Int(bytes[index - 1])
            }
            guard index + 4 <= bytes.count else { throw Failure(reason: "name-value pair cut short") }
            let value = Int(bytes[index] & 0x7f) << 24 | Int(bytes[index + 1]) << 16 | Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            index += 4
            return value
        }
        while index < bytes.count {
            let nameLength = try length()
            let valueLength = try length()
            guard nameLength <= bytes.count - index, valueLength <= bytes.count - index - nameLength else {
                throw Failure(reason: "name-value pair longer than its record")
            }
            let name = String(decoding: bytes[index..<(index + nameLength)], as: UTF8.self)
            index += nameLength
            let value = String(decoding: bytes[index..<(index + valueLength)], as: UTF8.self)
            index += valueLength
            pairs.append((name, value))
        }
        return pairs
    }

    package static func encodePairs(_ pairs: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        func length(_ count: Int) {
            if count < 128 {
                out.append(UInt8(count))
            } else {
                out += [UInt8((count >> 24) & 0x7f) | 0x80, UInt8((count >> 16) & 0xff), UInt8((count >> 8) & 0xff), UInt8(count & 0xff)]
            }
        }
        for (name, value) in pairs {
            length(name.utf8.count)
            length(value.utf8.count)
            out += Array(name.utf8) + Array(value.utf8)
        }
        return out
    }

    /// `content` as records of one type (an empty record ends a stream), padded to 8 bytes.
    package static func encode(_ type: RecordType, requestId: UInt16, _ content: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        repeat {
            let length = min(maxContent, content.count - offset)
            let padding = (8 - length % 8) % 8
            out += [
                version, type.rawValue, UInt8(requestId >> 8), UInt8(requestId & 0xff),
                UInt8(length >> 8), UInt8(length & 0xff), UInt8(padding), 0,
            ]
            out += content[offset..<(offset + length)]
            out += [UInt8](repeating: 0, count: padding)
            offset += length
        } while offset < content.count
        return out
    }

    /// The records that answer a request: the CGI response on STDOUT, the stream's end, and
    /// END_REQUEST.
    package static func answer(
        requestId: UInt16, stdout: [UInt8], appStatus: UInt32 = 0,
        status: ProtocolStatus = .requestComplete
    ) -> [UInt8] {
        var out: [UInt8] = []
        if !stdout.isEmpty { out += encode(.stdout, requestId: requestId, stdout) }
        out += encode(.stdout, requestId: requestId, [])
        out += endRequest(requestId: requestId, appStatus: appStatus, status: status)
        return out
    }

    package static func endRequest(requestId: UInt16, appStatus: UInt32 = 0, status: ProtocolStatus) -> [UInt8] {
        encode(
            .endRequest, requestId: requestId,
            [
                UInt8(appStatus >> 24), UInt8((appStatus >> 16) & 0xff),
                UInt8((appStatus >> 8) & 0xff), UInt8(appStatus & 0xff), status.rawValue, 0, 0, 0,
            ])
    }
}

/// One request as its records arrive: BEGIN_REQUEST, PARAMS until an empty record, STDIN until
/// an empty record. STDIN past `maxBody` (and one byte) is counted, not kept (the answer is a 413).
package struct FastCGIRequestBuilder {
    package let requestId: UInt16
    package let role: UInt16
    package let keepConnection: Bool
    package private(set) var params: [String: String] = [:]
    package private(set) var body: [UInt8] = []
    package private(set) var bodyBytes = 0
    private var paramBytes: [UInt8] = []
    private var paramsDone = false
    package private(set) var complete = false
    private let maxBody: Int
    /// PARAMS are a few KB in practice; far more is an attack, not a request.
    package static let maxParamBytes = 1 << 20

    package init(begin record: FastCGI.Record, maxBody: Int) throws(FastCGI.Failure) {
        guard record.content.count >= 8 else { throw FastCGI.Failure(reason: "BEGIN_REQUEST too short") }
        requestId = record.requestId
        role = UInt16(record.content[0]) << 8 | UInt16(record.content[1])
        keepConnection = record.content[2] & FastCGI.keepConnection != 0
        self.maxBody = maxBody
    }

    package mutating func add(_ record: FastCGI.Record) throws(FastCGI.Failure) {
        switch FastCGI.RecordType(rawValue: record.type) {
        case .params:
            guard !paramsDone else { throw FastCGI.Failure(reason: "PARAMS after their end") }
            if record.content.isEmpty {
                paramsDone = true
                params = Dictionary(try FastCGI.decodePairs(paramBytes), uniquingKeysWith: { _, last in last })
                paramBytes = []
            } else {
                guard paramBytes.count + record.content.count <= Self.maxParamBytes else {
                    throw FastCGI.Failure(reason: "PARAMS too large")
                }
                paramBytes += record.content
            }
        case .stdin:
            guard paramsDone else { throw FastCGI.Failure(reason: "STDIN before PARAMS ended") }
            if record.content.isEmpty {
                complete = true
            } else {
                bodyBytes += record.content.count
                // The first `maxBody + 1` bytes, in order: enough to tell a body past the limit.
                body += record.content.prefix(max(0, maxBody + 1 - body.count))
            }
        case .data:
            break
        default:
            throw FastCGI.Failure(reason: "record type \(record.type) inside a request")
        }
    }
}
