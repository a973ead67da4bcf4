import CompassPlatform

/// Sends normalized events to a pixel: batches of at most 1000; a batch Meta rejects as invalid
/// is split until the bad events are isolated and the rest delivered; a temporary failure
/// stops sending and defers what is left (the caller queues it).
package struct EventDelivery {
    package static let batchLimit = 1000

    package var graph: GraphClient
    package var pixelId: String
    package var token: String
    package var testEventCode: String?
    /// `partner_agent` of every request (META_PARTNER_AGENT).
    package var partnerAgent: String

    package struct Report: Sendable {
        package var sent: [Int] = []
        package var rejected: [(index: Int, code: String, message: String)] = []
        package var deferred: [Int] = []
        /// The failure that deferred events, when one did.
        package var failure: GraphFailure?
        package var eventsReceived = 0
        package var fbtraceIds: [String] = []
    }

    private struct Answer: Decodable {
        var eventsReceived: Int?
        var fbtraceId: String?
        var messages: [JSONValue]?
        enum CodingKeys: String, CodingKey {
            case eventsReceived = "events_received"
            case fbtraceId = "fbtrace_id"
            case messages
        }
    }

    /// Meta's messages about an accepted batch, for the log: at most five, each shortened, with
    /// anything shaped like an email address or a long number masked.
    package static func loggable(_ messages: [JSONValue]) -> [String] {
        messages.prefix(5).map { message in masked(message.string ?? String(decoding: message.serialized, as: UTF8.self)) }
    }

    /// Meta's words for a log line: shortened, anything shaped like an email address or a long
    /// number (a phone, an id) masked, in case Meta quoted a value back.
    package static func masked(_ text: String) -> String {
        text.prefix(200).split(separator: " ", omittingEmptySubsequences: false).map { word -> String in
            if word.contains("@") || word.filter(\.isNumber).count >= 5 { return "[masked]" }
            return String(word)
        }.joined(separator: " ")
    }

    package func deliver(_ events: [NormalizedEvent]) -> Report {
        var report = Report()
        var start = 0
        while start < events.count {
            let end = min(start + Self.batchLimit, events.count)
            send(Array(start..<end), of: events, into: &report)
            start = end
        }
        return report
    }

    /// The exact request body for these events: their payloads as they are, keys sorted.
    package func body(_ events: [NormalizedEvent]) -> [UInt8] {
        Self.body(events, partnerAgent: partnerAgent, testEventCode: testEventCode)
    }

    /// `{"data":[...],"partner_agent":...,"test_event_code":...}`, the payloads copied in.
    package static func body(_ events: [NormalizedEvent], partnerAgent: String, testEventCode: String?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(events.reduce(64) { $0 + $1.payloadJSON.count + 1 })
        write(events[...], partnerAgent: partnerAgent, testEventCode: testEventCode, into: &out)
        return out
    }

    /// `body`'s text appended to `out`. The events come as a slice, not as any collection: a
    /// generic walk across the module boundary runs unspecialized, with a heap buffer an event.
    package static func write(_ events: ArraySlice<NormalizedEvent>, partnerAgent: String, testEventCode: String?, into out: inout [UInt8])
    {
        out.append(literal: #"{"data":["#)
        for (index, event) in events.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: event.payloadJSON)
        }
        out.append(literal: #"],"partner_agent":"#)
        JSONText.appendQuoted(partnerAgent, to: &out)
        if let testEventCode {
            out.append(literal: #","test_event_code":"#)
            JSONText.appendQuoted(testEventCode, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    private func send(_ indices: [Int], of events: [NormalizedEvent], into report: inout Report) {
        if report.failure != nil {
            report.deferred += indices
            return
        }
        do {
            let answer: Answer = try graph.post("\(pixelId)/events", body: body(indices.map { events[$0] }), token: token)
            report.sent += indices
            report.eventsReceived += answer.eventsReceived ?? indices.count
            if let trace = answer.fbtraceId { report.fbtraceIds.append(trace) }
            var fields: [String: LogValue] = ["events": .int(indices.count), "events_received": .int(answer.eventsReceived ?? 0)]
            if let trace = answer.fbtraceId { fields["fbtrace_id"] = .string(trace) }
            if let messages = answer.messages, !messages.isEmpty { fields["meta_messages"] = .strings(Self.loggable(messages)) }
            graph.logger.info("events_delivered", fields)
        } catch {
            if let trace = error.fbtraceId { report.fbtraceIds.append(trace) }
            switch error.kind {
            case .invalidEvent where indices.count > 1:
                // Meta named the event: it alone is refused and the rest go again in one call.
                if case .api(let body, _, _) = error, let bad = body.eventIndex, indices.indices.contains(bad) {
                    report.rejected.append((indices[bad], "meta_invalid_event", Self.reason(error)))
                    var rest = indices
                    rest.remove(at: bad)
                    send(rest, of: events, into: &report)
                    return
                }
                let middle = indices.count / 2
                send(Array(indices[..<middle]), of: events, into: &report)
                send(Array(indices[middle...]), of: events, into: &report)
            case .invalidEvent, .invalidRequest:
                let message = Self.reason(error)
                report.rejected += indices.map { ($0, error.kind == .invalidEvent ? "meta_invalid_event" : "meta_rejected", message) }
            case .invalidToken, .permission, .rateLimited, .transient, .blocked, .objectUnavailable:
                report.failure = error
                report.deferred += indices
            }
        }
    }

    /// Meta's own words about the rejection (they name fields, never values).
    package static func reason(_ failure: GraphFailure) -> String {
        if case .api(let error, _, _) = failure {
            let text = error.errorUserMsg ?? error.message ?? "Meta rejected the event."
            let code = error.errorSubcode.map { " (\($0))" } ?? ""
            return String(text.prefix(300)) + code
        }
        if case .transport = failure { return "Meta could not be reached." }
        return "Meta gave an answer that could not be read."
    }

    package init(
        graph: GraphClient, pixelId: String, token: String, testEventCode: String? = nil,
        partnerAgent: String = MetaSettings.defaultPartnerAgent
    ) {
        self.graph = graph
        self.pixelId = pixelId
        self.token = token
        self.testEventCode = testEventCode
        self.partnerAgent = partnerAgent
    }
}
