import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct FastCGIProtocolTests {
    @Test func nameValuePairsRoundTripWithShortAndLongLengths() throws {
        let long = String(repeating: "v", count: 300)
        let pairs = [("A", "1"), ("EMPTY", ""), (String(repeating: "N", count: 200), long)]
        let decoded = try FastCGI.decodePairs(FastCGI.encodePairs(pairs))
        #expect(decoded.map(\.0) == pairs.map(\.0) && decoded.map(\.1) == pairs.map(\.1))
        #expect(throws: FastCGI.Failure.self) { try FastCGI.decodePairs([5, 1, 65]) }
        #expect(throws: FastCGI.Failure.self) { try FastCGI.decodePairs([0x80, 0, 0]) }
        #expect(throws: FastCGI.Failure.self) { try FastCGI.decodePairs([0xff, 0xff, 0xff, 0xff, 1, 65]) }
    }

    @Test func recordsAreReadWhateverTheChunksTheyArriveIn() throws {
        let bytes = FastCGI.encode(.params, requestId: 7, Array(repeating: 1, count: 70_000)) + FastCGI.encode(.stdin, requestId: 7, [])
        for chunk in [1, 3, 8, 1000, bytes.count] {
            var reader = FastCGI.RecordReader()
            var records: [FastCGI.Record] = []
            var offset = 0
            while offset < bytes.count {
                reader.append(bytes[offset..<min(offset + chunk, bytes.count)])
                offset += chunk
                while let record = try reader.next() { records.append(record) }
            }
            #expect(records.map(\.content.count) == [65_535, 4_465, 0], "chunks of \(chunk)")
            #expect(records.allSatisfy { $0.requestId == 7 })
        }
        var wrong = FastCGI.RecordReader()
        wrong.append([2, 1, 0, 1, 0, 0, 0, 0])
        #expect(throws: FastCGI.Failure.self) { try wrong.next() }
    }

    /// Past the limit the body is counted, and what is kept is its beginning, in order: a later
    /// small record never lands after a skipped large one.
    @Test func aBodyPastTheLimitKeepsItsFirstBytesInOrder() throws {
        var request = try FastCGIRequestBuilder(
            begin: FastCGI.Record(type: 1, requestId: 1, content: [0, 1, 0, 0, 0, 0, 0, 0]),
            maxBody: 100)
        try request.add(FastCGI.Record(type: 4, requestId: 1, content: FastCGI.encodePairs([("CONTENT_LENGTH", "150")])))
        try request.add(FastCGI.Record(type: 4, requestId: 1, content: []))
        for (byte, count) in [(UInt8(1), 60), (2, 60), (3, 30)] {
            try request.add(FastCGI.Record(type: 5, requestId: 1, content: [UInt8](repeating: byte, count: count)))
        }
        try request.add(FastCGI.Record(type: 5, requestId: 1, content: []))
        #expect(request.complete && request.bodyBytes == 150)
        #expect(request.body == [UInt8](repeating: 1, count: 60) + [UInt8](repeating: 2, count: 41))
    }
}
