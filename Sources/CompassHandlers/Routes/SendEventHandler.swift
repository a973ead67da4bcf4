import CompassMeta
import CompassPlatform
import CompassStorage

/// POST /api/connect/meta/events: the ingest pipeline's events, each delivered to the tenant's
/// pixel, queued through an outage, or reported back as rejected with the reason.
/// POST /api/connect/meta/events/replay: dead-lettered events still in Meta's window go back to
/// the outbox and are sent.
package struct SendEventHandler: Handler {
    package static let name = "send-event"
    package static let methods = ["POST"]
    package static let paths = ["/api/connect/meta/events", "/api/connect/meta/events/replay"]
    package static let maxBodyBytes = 16 << 20
    package static let takesJSONBody = true
    package static let maxEvents = 10_000
    package let dependencies: Dependencies

    package struct Answer: Encodable {
        package struct Rejection: Encodable {
            package var index: Int
            package var eventId: String?
            package var code: String
            package var message: String
            /// Each problem with its field, when the connector checked the event (not Meta).
            package var problems: [EventRejection.Problem]? = nil
        }
        package struct Warning: Encodable {
            package var index: Int
            package var message: String
        }
        package var status: String
        package var eventsReceived = 0
        package var queued = 0
        package var duplicates = 0
        package var rejected: [Rejection] = []
        package var warnings: [Warning] = []
        package var fbtraceIds: [String] = []
    }

    package func handle(_ request: CGIRequest) throws -> CGIResponse {
        let session = try dependencies.authenticate(request)
        if request.path.hasSuffix("/replay") { return try replay(tenant: session.tenantId) }
        let inputs = try Inputs(request.body)
        let tenant = session.tenantId
        let dryRun = ["1", "true"].contains(request.query.single("dryRun") ?? "")
        let requestCode = try Self.testEventCode(request.query, body: inputs.testEventCode)

        let integration: Integration? = try dependencies.records.load(Integration.self, at: RecordKey.integration(tenant))?.0
        if !dryRun {
            guard let integration, integration.status != .disconnected else { throw APIError.notConnected }
            guard !integration.config.datasetsInUse.isEmpty else {
                throw APIError(409, "pixel_not_configured", "Choose an ad account and a pixel in the Meta settings first.")
            }
        }

        var (result, valid) = accept(inputs, tenant: tenant, settings: integration?.config)
        if dryRun { return dryRunResponse(valid.map(\.event), integration: integration, requestCode: requestCode, result: result) }
        let invalid = result.rejected.count
        let pipeline = EventPipeline(dependencies: dependencies, tenant: tenant)
        // Of overlapping requests carrying one event, exactly one claims and sends it.
        var claimed: [(index: Int, event: NormalizedEvent)] = []
        var stillSending: [NormalizedEvent] = []
        for (item, claim) in zip(valid, try pipeline.claimAll(valid.map(\.event))) {
            switch DeliveryMachine.afterClaim(claim, queued: false) {
            case .send: claimed.append(item)
            case .duplicate: result.duplicates += 1
            default: stillSending.append(item.event)
            }
        }
        let code = requestCode ?? integration?.config.testEventCode(at: dependencies.clock.now)
        if !stillSending.isEmpty {
            do {
                result.queued += try pipeline.queue(stillSending, error: "another copy was being sent", testEventCode: code)
            } catch {
                pipeline.settle(claimed.map(\.event), as: nil)
                throw error
            }
        }
        if !claimed.isEmpty { try send(claimed, integration: integration!, testEventCode: code, pipeline: pipeline, into: &result) }

        let outcome = Self.status(result, total: inputs.count)
        result.status = outcome.name
        let metrics = dependencies.metrics
        metrics.add(MetricCatalog.eventsAccepted, [:], result.eventsReceived + result.queued + result.duplicates)
        metrics.add(MetricCatalog.eventsDuplicates, [:], result.duplicates)
        metrics.add(MetricCatalog.eventsRejected, ["reason": "invalid"], invalid)
        metrics.add(MetricCatalog.eventsRejected, ["reason": "meta"], result.rejected.count - invalid)
        dependencies.logger.info(
            "events_handled",
            [
                "events": .int(inputs.count), "sent": .int(result.eventsReceived), "queued": .int(result.queued),
                "duplicates": .int(result.duplicates), "rejected": .int(result.rejected.count),
                "fbtrace_ids": .strings(result.fbtraceIds),
            ])
        return .json(outcome.http, result)
    }

    /// Each event of the request normalized: the valid ones, each once, and the answer so far
    /// (warnings, rejections with their reasons, copies counted as duplicates).
    private func accept(
        _ inputs: Inputs, tenant: String, settings: Integration.Settings?
    ) -> (Answer, [(index: Int, event: NormalizedEvent)]) {
        var result = Answer(status: "sent")
        var valid: [(index: Int, event: NormalizedEvent)] = []
        // The pair Meta deduplicates on (what `dedupKey` digests), kept as the event's own strings:
        // no digest and no new string per event.
        var seen = EventIdentities(
            count: inputs.count,
            seed: dependencies.random.bytes(8).reduce(0) { $0 << 8 | UInt64($1) })
        let now = dependencies.clock.now
        // With a dataset chosen, an event whose source has none is refused (never sent elsewhere).
        let routed = settings.map { !$0.datasetsInUse.isEmpty } ?? false
        for index in 0..<inputs.count {
            let (outcome, input) = inputs.normalize(index, tenantId: tenant, now: now)
            switch outcome {
            case .success(let event):
                result.warnings += event.warnings.map { Answer.Warning(index: index, message: $0) }
                if routed, settings?.dataset(for: event.actionSource) == nil {
                    result.rejected.append(
                        .init(
                            index: index, eventId: event.eventId, code: "no_dataset",
                            message: "No dataset is chosen for action_source \(event.actionSource) and there is no default pixel."))
                    continue
                }
                // A copy of an event earlier in the request is a duplicate, in a dry run too.
                if !seen.insert(name: event.eventName, id: event.eventId) {
                    result.duplicates += 1
                    continue
                }
                valid.append((index, event))
            case .failure(let rejection):
                result.rejected.append(
                    .init(
                        index: index, eventId: input?["eventId"]?.string ?? input?["event_id"]?.string,
                        code: rejection.code, message: rejection.message,
                        problems: rejection.problems.isEmpty ? nil : rejection.problems))
            }
        }
        return (result, valid)
    }

    /// The claimed events, one batch per destination (`Destination`): each dataset's answer
    /// settles its own events. A dataset Meta cannot reach holds only its events; any other
    /// failure queues the groups not yet sent without calling Meta again.
    /// `testEventCode` is the request's own, else the tenant's in force: the code the events
    /// are sent with, and kept with them when they are queued.
    private func send(
        _ items: [(index: Int, event: NormalizedEvent)], integration: Integration, testEventCode: String?, pipeline: EventPipeline,
        into result: inout Answer
    ) throws {
        let groups = integration.config.destinations(of: items, testEventCode: testEventCode) { $0.event.actionSource }
        let context: EventPipeline.Context
        do {
            context = try pipeline.context(for: integration)
        } catch {
            pipeline.settle(items.map(\.event), as: nil)
            throw error
        }
        var stop: GraphFailure? = nil
        for (position, (destination, group)) in groups.enumerated() {
            do {
                switch (context, stop) {
                case (.waiting(let why), _):
                    try queue(group.map(\.event), reason: why, testEventCode: testEventCode, pipeline: pipeline, into: &result)
                case (.ready, let failure?):
                    try queue(
                        group.map(\.event), reason: "\(failure.kind)", retryAfter: failure.retryAfter, testEventCode: testEventCode,
                        pipeline: pipeline, into: &result)
                case (.ready(let sending), nil):
                    let failure = try deliver(
                        group, with: sending.delivery(to: destination), pipeline: pipeline, integration: integration, into: &result)
                    if let failure, !DeliveryMachine.holdsOnlyItsDataset(failure) { stop = failure }
                }
            } catch {
                // The groups not reached are released: a retry of the request can send them.
                pipeline.settle(groups[(position + 1)...].flatMap { $0.1.map(\.event) }, as: nil)
                throw error
            }
        }
        result.rejected.sort { $0.index < $1.index }
    }

    /// Into the outbox with the code the events were accepted with. Nothing is accepted that is
    /// not stored: a full or busy outbox is a 503 to retry. The claims are released either way:
    /// a queued event holds no state but its outbox entry (`EventPipeline.EventState`).
    private func queue(
        _ events: [NormalizedEvent], reason: String, retryAfter: Int? = nil, testEventCode: String?, pipeline: EventPipeline,
        into result: inout Answer
    ) throws {
        defer { pipeline.settle(events, as: nil) }
        result.queued += try pipeline.queue(events, error: reason, retryAfter: retryAfter, testEventCode: testEventCode)
    }

    /// One destination's batch sent and each event settled as `DeliveryMachine` says; the
    /// failure, if Meta's answer had one.
    private func deliver(
        _ items: [(index: Int, event: NormalizedEvent)], with delivery: EventDelivery, pipeline: EventPipeline,
        integration: Integration, into result: inout Answer
    ) throws -> GraphFailure? {
        let report = delivery.deliver(items.map(\.event))
        var sent: [NormalizedEvent] = []
        var refused: [NormalizedEvent] = []
        var deferred: [NormalizedEvent] = []
        var deferredWhy: (reason: String, retryAfter: Int?) = ("", nil)
        for (position, item) in items.enumerated() {
            switch DeliveryMachine.afterDelivery(position, of: report) {
            case .markSent: sent.append(item.event)
            case .reject(let code, let reason):
                refused.append(item.event)
                result.rejected.append(.init(index: item.index, eventId: item.event.eventId, code: code, message: reason))
            case .queue(let reason, let retryAfter):
                deferred.append(item.event)
                deferredWhy = (reason, retryAfter)
            default: break
            }
        }
        pipeline.settle(sent, as: .sent)
        pipeline.settle(refused, as: nil)
        result.eventsReceived += sent.count
        result.fbtraceIds += report.fbtraceIds
        if !deferred.isEmpty {
            try queue(
                deferred, reason: deferredWhy.reason, retryAfter: deferredWhy.retryAfter, testEventCode: delivery.testEventCode,
                pipeline: pipeline, into: &result)
        }
        if let failure = report.failure { pipeline.markNeedsReauthIfRefused(failure, delivery: delivery) }
        pipeline.notePixelStatus(report.failure, sent: !report.sent.isEmpty, integration: integration, dataset: delivery.pixelId)
        pipeline.recordDelivery(
            report.sent.map { items[$0].event }, failure: report.failure.map { "\($0.kind)" }, dataset: delivery.pixelId,
            pixelId: integration.config.pixelId)
        return report.failure
    }

    /// The request's own test event code: `?testEventCode=` or the batch body's `testEventCode`
    /// (both only when they agree). It applies to this request's events only, and wins over the
    /// tenant's.
    private static func testEventCode(_ query: QueryParameters, body: String?) throws -> String? {
        let fromQuery = query.contains("testEventCode") ? query.single("testEventCode") ?? "" : nil
        if let fromQuery, let body, fromQuery != body {
            throw APIError.badRequest("conflicting_test_event_code", "testEventCode is given twice, with two values.")
        }
        guard let code = fromQuery ?? body else { return nil }
        guard Integration.Settings.isValidTestEventCode(code) else {
            throw APIError.badRequest("invalid_test_event_code", "testEventCode must be 1 to 64 letters and digits.")
        }
        return code
    }

    package static func status(_ result: Answer, total: Int) -> (name: String, http: Int) {
        if result.queued > 0 { return ("queued", 202) }
        if !result.rejected.isEmpty {
            return result.rejected.count == total ? ("rejected", 422) : ("partial", 207)
        }
        return ("sent", 200)
    }

    /// The request's events: tokens of a tape over the body, each normalized by
    /// `EventFastPath` when it takes it and by every rule of `ConversionEvent` when not; or, for
    /// a body the tape declines, values parsed as ever (whose errors are the answer's).
    private struct Inputs {
        var tape: JSONTape?
        var tokens: [Int] = []
        var values: [JSONValue] = []
        /// The batch body's own `testEventCode`, when it has one.
        var testEventCode: String?
        let workspace = EventFastPath.Workspace()

        init(_ body: [UInt8]) throws {
            if let tape = JSONTape(body), tape.tokens[0].kind == .object {
                let members = tape.members(of: 0)
                if let list = members.first(where: { tape.isString($0.name, "events") })?.value {
                    let code = members.first { tape.isString($0.name, "testEventCode") }?.value
                    let token = tape.tokens[list]
                    if members.count == (code == nil ? 1 : 2), code.map({ tape.tokens[$0].kind == .string }) ?? true,
                        token.kind == .array, token.count > 0, token.count <= SendEventHandler.maxEvents
                    {
                        self.tape = tape
                        tokens = tape.elements(of: list)
                        testEventCode = code.map { index in tape.withView { $0.string(index) } }
                        return
                    }
                } else {
                    self.tape = tape
                    tokens = [0]
                    return
                }
            }
            (values, testEventCode) = try SendEventHandler.parse(body)
        }

        var count: Int { tape == nil ? values.count : tokens.count }

        /// The event at `index` normalized, and its value when the general path read it.
        func normalize(_ index: Int, tenantId: String, now: Date) -> (Result<NormalizedEvent, EventRejection>, JSONValue?) {
            if let tape {
                if let event = EventFastPath.normalize(tape, at: tokens[index], now: now, workspace: workspace) {
                    return (.success(event), nil)
                }
                let value = (try? JSONParser.parse(tape.valueBytes(tokens[index]))) ?? .null
                return (ConversionEvent.normalize(value, tenantId: tenantId, now: now), value)
            }
            return (ConversionEvent.normalize(values[index], tenantId: tenantId, now: now), values[index])
        }
    }

    /// One event, or `{"events":[...]}` with up to 10,000 and, optionally, the request's own
    /// `testEventCode`.
    private static func parse(_ body: [UInt8]) throws -> (events: [JSONValue], testEventCode: String?) {
        let value: JSONValue
        do {
            value = try JSON.decode(JSONValue.self, from: body)
        } catch {
            throw APIError.badRequest("invalid_json", "The body must be one event object or {\"events\":[...]}.")
        }
        guard let object = value.object else {
            throw APIError.badRequest("invalid_json", "The body must be one event object or {\"events\":[...]}.")
        }
        guard let events = object["events"] else { return ([value], nil) }
        let code = object["testEventCode"]
        guard object.count == (code == nil ? 1 : 2), let list = events.array else {
            throw APIError.badRequest("invalid_json", "\"events\" must be an array, beside it only \"testEventCode\".")
        }
        guard code == nil || code?.string != nil else {
            throw APIError.badRequest("invalid_test_event_code", "testEventCode must be 1 to 64 letters and digits.")
        }
        guard !list.isEmpty else { throw APIError.badRequest("no_events", "\"events\" is empty.") }
        guard list.count <= Self.maxEvents else {
            throw APIError(413, "too_many_events", "At most \(Self.maxEvents) events per request.")
        }
        return (list, code?.string)
    }

    /// The exact request bodies that would go to Meta, the events' payload bytes copied in: a
    /// large batch costs one pass over its bytes. One body per destination and 1000 events, each
    /// body's dataset at the same place of `datasetIds` (null before a pixel is chosen). Keys in
    /// sorted order, as every answer has them.
    private func dryRunResponse(
        _ events: [NormalizedEvent], integration: Integration?, requestCode: String?, result: Answer
    ) -> CGIResponse {
        let settings = integration?.config
        let code = requestCode ?? settings?.testEventCode(at: dependencies.clock.now)
        var groups = settings?.destinations(of: events, testEventCode: code) { $0.actionSource } ?? []
        // Before a pixel is chosen: the bodies, to no dataset yet.
        if groups.isEmpty && !events.isEmpty { groups = [(Destination(dataset: "", testEventCode: code), events)] }
        // Each body: its destination and its events, 1000 at most.
        let bodies = groups.flatMap { destination, group in
            stride(from: 0, to: group.count, by: EventDelivery.batchLimit).map {
                (destination, group[$0..<min($0 + EventDelivery.batchLimit, group.count)])
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(events.reduce(256) { $0 + $1.payloadJSON.count + 1 })
        out.append(literal: #"{"datasetIds":"#)
        JSONValue.array(bodies.map { $0.0.dataset.isEmpty ? .null : .string($0.0.dataset) }).write(into: &out)
        out.append(literal: #","duplicates":"#)
        out.append(decimal: Int64(result.duplicates))
        out.append(literal: #","payloads":["#)
        for (position, (destination, slice)) in bodies.enumerated() {
            if position > 0 { out.append(UInt8(ascii: ",")) }
            EventDelivery.write(
                slice, partnerAgent: dependencies.config.meta.partnerAgent, testEventCode: destination.testEventCode, into: &out)
        }
        out.append(UInt8(ascii: "]"))
        if let pixel = settings?.pixelId {
            out.append(literal: #","pixelId":"#)
            JSONText.appendQuoted(pixel, to: &out)
        }
        out.append(literal: #","rejected":"#)
        JSONValue.array(
            result.rejected.map { rejection in
                var item: [String: JSONValue] = [
                    "index": .int(Int64(rejection.index)), "code": .string(rejection.code),
                    "message": .string(rejection.message),
                ]
                if let id = rejection.eventId { item["eventId"] = .string(id) }
                if let problems = rejection.problems {
                    item["problems"] = .array(
                        problems.map {
                            .object(["field": .string($0.field), "code": .string($0.code), "message": .string($0.message)])
                        })
                }
                return .object(item)
            }
        ).write(into: &out)
        out.append(literal: #","status":"dry_run","warnings":"#)
        JSONValue.array(result.warnings.map { .object(["index": .int(Int64($0.index)), "message": .string($0.message)]) }).write(into: &out)
        out.append(UInt8(ascii: "}"))
        return CGIResponse(status: 200, headers: [("Content-Type", "application/json; charset=utf-8")], body: out)
    }

    private func replay(tenant: String) throws -> CGIResponse {
        struct Replay: Encodable {
            var replayed: Int
            var expired: Int
            var overLimit: Int
            var alreadySent: Int
            var drain: EventPipeline.DrainSummary
        }
        let pipeline = EventPipeline(dependencies: dependencies, tenant: tenant)
        let moved = try pipeline.replayDeadLetters()
        let drained = try pipeline.drain()
        return .json(
            200,
            Replay(
                replayed: moved.replayed, expired: moved.expired, overLimit: moved.overLimit,
                alreadySent: moved.alreadySent, drain: drained))
    }

    package init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }
}
