// libFuzzer targets, linked by scripts/fuzz with the layers built as modules
// (swiftc -sanitize=fuzzer,address -parse-as-library, one module per layer).
// FUZZ_TARGET picks the target: cgi, session, event, signed_request, graph, etcd, fastcgi.
#if canImport(Glibc)
import Glibc
#endif
import CompassHandlers
import CompassHosts
import CompassMeta
import CompassPlatform
import CompassStorage

let fuzzTarget = getenv("FUZZ_TARGET").map { String(cString: $0) } ?? "event"
let fuzzNow = Date(timeIntervalSince1970: 1_790_000_000)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    switch fuzzTarget {
    case "cgi":
        // Lines: method, query string, cookie header, content length; the rest is ignored.
        let lines = text.split(separator: "\n", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
        var environment = ["REQUEST_METHOD": lines.first ?? "", "QUERY_STRING": lines.count > 1 ? lines[1] : ""]
        if lines.count > 2 { environment["HTTP_COOKIE"] = lines[2] }
        if let request = try? CGIRequest.head(from: environment) {
            _ = request.cookieValues("compass_session")
            _ = request.query.single("state")
            _ = request.query.encoded
        }
        if lines.count > 3 { _ = try? CGIRequest.contentLength(lines[3], limit: 1 << 20) }
    case "session":
        let verifier = SessionVerifier(secret: Array("fuzz-secret-0123456789abcdef0123456789".utf8))
        _ = try? verifier.verify(text, now: fuzzNow)
    case "event":
        let parsed = try? JSONParser.parse(bytes)
        if let tape = JSONTape(bytes) {
            // The tape takes no text the parser refuses, and the byte-level path gives what
            // every rule gives for each event it takes.
            precondition(parsed != nil, "the tape took text the parser refuses")
            var tokens = [0]
            if tape.tokens[0].kind == .object, let events = tape.members(of: 0).first(where: { tape.isString($0.name, "events") }),
               tape.tokens[events.value].kind == .array {
                tokens = tape.elements(of: events.value)
            }
            for token in tokens.prefix(50) {
                guard let fast = EventFastPath.normalize(tape, at: token, now: fuzzNow) else { continue }
                let general = ConversionEvent.normalize((try? JSONParser.parse(tape.valueBytes(token))) ?? .null, tenantId: "t", now: fuzzNow)
                precondition(general == .success(fast), "the byte-level path and the rules disagree")
            }
        }
        guard let value = parsed else { return 0 }
        let events = value["events"]?.array ?? [value]
        for event in events.prefix(50) {
            if case .success(let normalized) = ConversionEvent.normalize(event, tenantId: "t", now: fuzzNow) {
                _ = normalized.payload.serialized
            }
        }
        _ = value.serialized
    case "signed_request":
        _ = try? MetaWebhooksHandler.verify(text, secret: "fuzz-app-secret", now: fuzzNow)
    case "graph":
        _ = GraphAPIError.decode(from: bytes)
        _ = try? JSON.decode(GraphClient.TokenInfo.self, from: bytes)
        _ = try? JSON.decode(GraphClient.AccessToken.self, from: bytes)
        _ = GraphClient.retryAfter(["x-business-use-case-usage": text])
    case "etcd":
        if let range = try? JSON.decode(EtcdStore.RangeAnswer.self, from: bytes) {
            for kv in range.kvs ?? [] { _ = try? kv.versioned() }
        }
        if let txn = try? JSON.decode(EtcdStore.TxnAnswer.self, from: bytes) { _ = try? txn.header.revisionNumber() }
    case "fastcgi":
        // A web server's byte stream: records, name-value pairs, a request put together.
        var reader = FastCGI.RecordReader()
        reader.append(bytes)
        var request: FastCGIRequestBuilder?
        while let record = try? reader.next() {
            if record.type == FastCGI.RecordType.beginRequest.rawValue {
                request = try? FastCGIRequestBuilder(begin: record, maxBody: 1 << 16)
            } else if record.type == FastCGI.RecordType.getValues.rawValue {
                _ = try? FastCGI.decodePairs(record.content)
            } else if var current = request {
                if (try? current.add(record)) == nil { break }
                request = current
            }
        }
        _ = FastCGI.answer(requestId: 1, stdout: Array(bytes.prefix(70_000)))
    default:
        fatalError("unknown FUZZ_TARGET \(fuzzTarget)")
    }
    return 0
}
