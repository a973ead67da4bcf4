import CompassPlatform

/// One event from the ingest pipeline, checked against every rule of META-API.md and turned
/// into Meta's payload shape with `user_data` normalized and hashed.
package struct NormalizedEvent: Sendable, Equatable {
    package var eventId: String
    package var eventName: String
    package var eventTime: Int64
    package var actionSource: String
    /// The event exactly as it goes to Meta (snake_case, hashed user data), as compact JSON with
    /// its keys sorted: what a request body or an outbox record holds, byte for byte. No raw PII.
    package var payloadJSON: [UInt8]
    /// Which match keys the event carries, for the tenant's coverage figures.
    package var matchKeys: MatchKeys
    package var warnings: [String]
    /// False when the caller gave no `eventId`: the payload then has no `event_id`, so that Meta
    /// deduplicates with the browser pixel by `event_name` with `fbp` or `external_id`; `eventId`
    /// is the connector's own idempotency key.
    package var payloadCarriesEventId = true

    /// The payload as a value (parsed from `payloadJSON`).
    package var payload: JSONValue { (try? JSONParser.parse(payloadJSON)) ?? .null }

    /// Stable per (event_id, event_name), the pair Meta deduplicates on: a store key segment.
    package var dedupKey: String { Hex.encode(Crypto.sha256(eventName + "\u{0}" + eventId)) }

    package init(
        eventId: String, eventName: String, eventTime: Int64, actionSource: String, payload: JSONValue, matchKeys: MatchKeys,
        warnings: [String]
    ) {
        self.init(
            eventId: eventId, eventName: eventName, eventTime: eventTime, actionSource: actionSource, payloadJSON: payload.serialized,
            matchKeys: matchKeys, warnings: warnings)
    }

    package init(
        eventId: String, eventName: String, eventTime: Int64, actionSource: String, payloadJSON: [UInt8], matchKeys: MatchKeys,
        warnings: [String]
    ) {
        self.eventId = eventId
        self.eventName = eventName
        self.eventTime = eventTime
        self.actionSource = actionSource
        self.payloadJSON = payloadJSON
        self.matchKeys = matchKeys
        self.warnings = warnings
    }
}

package struct EventRejection: Error, Equatable, Sendable {
    /// One thing wrong with an event, under the event field it is in.
    package struct Problem: Equatable, Sendable, Encodable {
        package var field: String
        package var code: String
        package var message: String
    }

    /// The first problem's code, and every problem's message.
    package var code: String
    package var message: String
    /// Every problem the event has (empty for a rejection that is not about one field).
    package var problems: [Problem] = []

    package init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    package init(problems: [Problem]) {
        self.code = problems.first?.code ?? "invalid_event"
        self.message = problems.map(\.message).joined(separator: " ")
        self.problems = problems
    }
}

package enum ConversionEvent {
    package static let actionSources: Set<String> = [
        "email", "website", "app", "phone_call", "chat", "physical_store",
        "system_generated", "business_messaging", "other",
    ]
    package static let matchKeysTracked = ["em", "ph", "external_id", "fbp", "fbc", "client_ip_address", "client_user_agent"]
    package static let futureToleranceSeconds: Int64 = 60

    private static let topLevelKeys: [String: String] = [
        "eventName": "event_name", "eventTime": "event_time", "actionSource": "action_source", "eventId": "event_id",
        "eventSourceUrl": "event_source_url", "referrerUrl": "referrer_url", "optOut": "opt_out", "userData": "user_data",
        "customData": "custom_data", "dataProcessingOptions": "data_processing_options", "appData": "app_data",
        "dataProcessingOptionsCountry": "data_processing_options_country",
        "dataProcessingOptionsState": "data_processing_options_state",
        "messagingChannel": "messaging_channel", "originalEventData": "original_event_data",
        "attributionData": "attribution_data", "advancedMeasurementTable": "advanced_measurement_table",
        "advertiserTrackingEnabled": "advertiser_tracking_enabled",
    ]

    /// `content_type` values Meta documents: products, and the other catalogs' items.
    package static let contentTypes: Set<String> = [
        "product", "product_group", "hotel", "flight", "destination", "home_listing", "vehicle",
    ]
    package static let deliveryCategories: Set<String> = ["in_store", "curbside", "home_delivery"]
    package static let messagingChannels: Set<String> = ["whatsapp", "messenger", "instagram"]
    /// The event names Meta takes with `action_source: business_messaging` (Meta's Conversions
    /// API for Business Messaging guide); any other is refused there with subcode 2804066.
    package static let messagingEventNames: Set<String> = [
        "Purchase", "LeadSubmitted", "InitiateCheckout", "AddToCart", "ViewContent", "OrderCreated", "OrderShipped",
        "OrderDelivered", "OrderCanceled", "OrderReturned", "CartAbandoned", "QualifiedLead", "RatingProvided", "ReviewProvided",
    ]

    /// `customData`'s camelCase names and their snake_case forms.
    package static let customDataKeys: [String: String] = [
        "contentIds": "content_ids", "contentType": "content_type", "orderId": "order_id", "numItems": "num_items",
        "predictedLtv": "predicted_ltv", "searchString": "search_string", "contentName": "content_name",
        "contentCategory": "content_category", "deliveryCategory": "delivery_category", "netRevenue": "net_revenue",
        "itemNumber": "item_number",
    ]

    /// The snake_case name of a `customData` key (given either way).
    package static func customDataName(_ key: String) -> String { customDataKeys[key] ?? key }

    /// `customData.value`: a finite number under a trillion either way (both event paths).
    package static func isValue(_ number: Double) -> Bool { number.isFinite && abs(number) < 1e12 }

    /// `customData.currency`, trimmed: three ASCII letters, appended lower-cased; false for
    /// anything else (both event paths).
    package static func appendCurrency(_ trimmed: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) -> Bool {
        guard trimmed.count == 3, trimmed.allSatisfy({ ASCII.isUpper($0) || ASCII.isLower($0) }) else { return false }
        out.append(lowercasedASCII: trimmed)
        return true
    }

    /// Checks and normalizes `raw`. `tenantId` seeds the generated event id when none is given.
    package static func normalize(_ raw: JSONValue, tenantId: String, now: Date) -> Result<NormalizedEvent, EventRejection> {
        do {
            return .success(try build(raw, tenantId: tenantId, now: now))
        } catch let rejection as EventRejection {
            return .failure(rejection)
        } catch {
            return .failure(EventRejection(code: "invalid_event", message: "The event could not be read."))
        }
    }

    private static func reject(_ code: String, _ message: String) -> EventRejection { EventRejection(code: code, message: message) }

    /// Every field is checked even after one fails, so a rejected event lists all its problems.
    private static func build(_ raw: JSONValue, tenantId: String, now: Date) throws -> NormalizedEvent {
        guard let input = raw.object else { throw reject("invalid_event", "An event must be a JSON object.") }
        var draft = Draft(input)
        let (name, source, time) = draft.core(now: now)
        let sourceURL = draft.pageFields()
        draft.userData(source: source, sourceURL: sourceURL, time: time)
        draft.dataParts(name: name, source: source)
        draft.messaging(name: name, source: source)
        draft.otherFields()
        let eventId = draft.eventId(raw, tenantId: tenantId)
        guard draft.problems.isEmpty, let name, let source, let time, let eventId else {
            throw EventRejection(problems: draft.problems)
        }
        draft.payload["event_name"] = .string(name)
        draft.payload["event_time"] = .int(time)
        draft.payload["action_source"] = .string(source)
        let callerGaveId = draft.fields["event_id"] != nil
        if callerGaveId { draft.payload["event_id"] = .string(eventId) }
        var event = NormalizedEvent(
            eventId: eventId, eventName: name, eventTime: time, actionSource: source,
            payload: .object(draft.payload), matchKeys: draft.keys, warnings: draft.warnings)
        event.payloadCarriesEventId = callerGaveId
        return event
    }

    /// An event being checked: its fields by Meta's names, Meta's payload as it grows, and every
    /// problem found so far, in the order the fields are checked.
    private struct Draft {
        var fields: [String: JSONValue] = [:]
        var problems: [EventRejection.Problem] = []
        var payload: [String: JSONValue] = [:]
        var warnings: [String] = []
        var keys = MatchKeys()

        /// The event's fields under Meta's names (either spelling taken); an unknown or
        /// repeated one is a problem.
        init(_ input: [String: JSONValue]) {
            fields.reserveCapacity(input.count)
            for key in input.keys.sorted() {
                guard let canonical = topLevelKeys[key] ?? (topLevelKeys.values.contains(key) ? key : nil) else {
                    let shown = String(key.prefix(40))
                    problem(shown, "unknown_field", "Unknown event field \"\(shown)\".")
                    continue
                }
                guard fields[canonical] == nil else {
                    problem(canonical, "invalid_field", "\(canonical) is given twice.")
                    continue
                }
                fields[canonical] = input[key]
            }
            payload.reserveCapacity(fields.count + 4)
        }

        mutating func problem(_ field: String, _ code: String, _ message: String) {
            problems.append(.init(field: field, code: code, message: message))
        }

        /// One field's checks: a problem is noted under `field` and the other fields go on.
        mutating func check<T>(_ field: String, _ body: (inout Draft) throws -> T) -> T? {
            do {
                return try body(&self)
            } catch let rejection as EventRejection {
                problem(field, rejection.code, rejection.message)
            } catch {
                problem(field, "invalid_field", "\(field) could not be read.")
            }
            return nil
        }

        /// The name, the action source and the time, each checked (Meta's window by source).
        mutating func core(now: Date) -> (String?, String?, Int64?) {
            let name = check("eventName") { draft throws -> String in
                guard let name = draft.fields["event_name"]?.string?.trimmingWhitespace, !name.isEmpty, name.count <= 100 else {
                    throw reject("missing_field", "eventName is required (1 to 100 characters).")
                }
                return name
            }
            let source = check("actionSource") { draft throws -> String in
                guard let source = draft.fields["action_source"]?.string, actionSources.contains(source) else {
                    throw reject("invalid_field", "actionSource must be one of \(actionSources.sorted().joined(separator: ", ")).")
                }
                return source
            }
            let time = check("eventTime") { draft throws -> Int64 in
                guard let time = draft.fields["event_time"]?.integer else {
                    throw reject("missing_field", "eventTime is required: Unix time in seconds.")
                }
                let current = now.unixSeconds
                if time > 100_000_000_000 { throw reject("invalid_field", "eventTime looks like milliseconds; Meta wants seconds.") }
                if time > current + futureToleranceSeconds { throw reject("event_in_future", "eventTime is in the future.") }
                let windowDays: Int64 = source == "physical_store" ? 62 : 7
                if time < current - windowDays * 86_400 {
                    throw reject("event_too_old", "eventTime is older than Meta's \(windowDays)-day window.")
                }
                return time
            }
            return (name, source, time)
        }

        /// The page's URL and referrer and the opt-out flag; the page's URL when readable
        /// (`.some(nil)` when absent, nil when it was a problem).
        mutating func pageFields() -> String?? {
            let sourceURL = check("eventSourceUrl") { try optionalURL($0.fields["event_source_url"], "eventSourceUrl") }
            if let url = sourceURL ?? nil { payload["event_source_url"] = .string(url) }
            if let referrer = check("referrerUrl", { try optionalURL($0.fields["referrer_url"], "referrerUrl") }) ?? nil {
                payload["referrer_url"] = .string(referrer)
            }
            if let optOut = fields["opt_out"] {
                _ = check("optOut") { draft throws in
                    guard let flag = optOut.bool else { throw reject("invalid_field", "optOut must be true or false.") }
                    draft.payload["opt_out"] = .bool(flag)
                }
            }
            return sourceURL
        }

        /// `user_data` normalized and hashed, `fbc` built from a click id in the page's URL, and
        /// the website rules (a user agent and the page's URL).
        mutating func userData(source: String?, sourceURL: String??, time: Int64?) {
            let value = fields["user_data"]
            if var (userData, found) = check("userData", { draft in try normalizeUserData(value, warnings: &draft.warnings) }) {
                if userData["fbc"] == nil, let url = sourceURL ?? nil, let time, let fbclid = fbclid(in: url) {
                    userData["fbc"] = .string("fb.1.\(time * 1000).\(fbclid)")
                    found.insert("fbc")
                }
                keys = found
                _ = check("userData") { _ throws in
                    guard !userData.isEmpty else {
                        throw reject("no_user_data", "userData needs at least one customer information key Meta can match on.")
                    }
                    if source == "website" && userData["client_user_agent"] == nil {
                        throw reject("missing_field", "Website events need userData.client_user_agent.")
                    }
                }
                payload["user_data"] = .object(userData)
            }
            if source == "website", case .some(nil) = sourceURL {
                problem("eventSourceUrl", "missing_field", "Website events need eventSourceUrl.")
            }
        }

        /// `custom_data` (Purchase needs it), Limited Data Use, and `app_data` (app events need it).
        mutating func dataParts(name: String?, source: String?) {
            if let custom = fields["custom_data"] {
                if let normalized = check("customData", { _ in try normalizeCustomData(custom, eventName: name ?? "") }) {
                    payload["custom_data"] = .object(normalized)
                }
            } else if name == "Purchase" {
                problem("customData", "missing_field", "Purchase events need customData.value and customData.currency.")
            }
            let limitedDataUse: [String: JSONValue] = check("dataProcessingOptions", { try dataProcessingOptions($0.fields) }) ?? [:]
            payload.merge(limitedDataUse) { _, new in new }
            if let app = fields["app_data"] {
                if let normalized = check("appData", { _ in try appData(app) }) { payload["app_data"] = .object(normalized) }
            } else if source == "app" {
                problem(
                    "appData", "missing_field",
                    "App events need appData (advertiser_tracking_enabled, application_tracking_enabled, extinfo).")
            }
        }

        /// Business messaging: a channel Meta knows, required, and only Meta's messaging event names.
        mutating func messaging(name: String?, source: String?) {
            if let channel = fields["messaging_channel"] {
                if let name = channel.string, messagingChannels.contains(name) {
                    payload["messaging_channel"] = .string(name)
                } else {
                    problem(
                        "messagingChannel", "invalid_field",
                        "messagingChannel must be one of \(messagingChannels.sorted().joined(separator: ", ")).")
                }
            } else if source == "business_messaging" {
                problem("messagingChannel", "missing_field", "business_messaging events need messagingChannel.")
            }
            if source == "business_messaging", let name, !messagingEventNames.contains(name) {
                problem(
                    "eventName", "invalid_field",
                    "business_messaging events take only the event names Meta accepts for messaging: \(messagingEventNames.sorted().joined(separator: ", "))."
                )
            }
        }

        /// The SDK's other event fields: the measurement table, the tracking flag, and the
        /// original event and attribution data (objects, passed as given).
        mutating func otherFields() {
            if let table = fields["advanced_measurement_table"] {
                if let text = table.string?.trimmingWhitespace, (1...256).contains(text.utf8.count) {
                    payload["advanced_measurement_table"] = .string(text)
                } else {
                    problem("advancedMeasurementTable", "invalid_field", "advancedMeasurementTable must be a table name.")
                }
            }
            if let tracking = fields["advertiser_tracking_enabled"] {
                if let flag = tracking.bool {
                    payload["advertiser_tracking_enabled"] = .bool(flag)
                } else {
                    problem("advertiserTrackingEnabled", "invalid_field", "advertiserTrackingEnabled must be true or false.")
                }
            }
            for (field, label) in [("original_event_data", "originalEventData"), ("attribution_data", "attributionData")] {
                guard let value = fields[field] else { continue }
                guard let object = value.object, !object.isEmpty else {
                    problem(label, "invalid_field", "\(label) must be an object.")
                    continue
                }
                payload[field] = value
            }
        }

        /// The caller's id, or one derived from the tenant and the event's content, so that a
        /// pipeline's retry is deduplicated rather than counted twice.
        mutating func eventId(_ raw: JSONValue, tenantId: String) -> String? {
            guard let given = fields["event_id"] else {
                let canonical = String(decoding: JSON.encode(raw), as: UTF8.self)
                return "cmp_" + String(Hex.encode(Crypto.sha256(tenantId + "\u{0}" + canonical)).prefix(32))
            }
            guard let id = given.string?.trimmingWhitespace, !id.isEmpty, id.utf8.count <= 256 else {
                problem("eventId", "invalid_field", "eventId must be a string of 1 to 256 bytes.")
                return nil
            }
            return id
        }
    }

    private static func optionalURL(_ value: JSONValue?, _ field: String) throws -> String? {
        guard let value, value != .null else { return nil }
        guard let text = value.string?.trimmingWhitespace, text.utf8.count <= 2048,
            text.hasPrefix("http://") || text.hasPrefix("https://")
        else {
            throw reject("invalid_field", "\(field) must be an http(s) URL.")
        }
        return text
    }

    package static func fbclid(in url: String) -> String? {
        let beforeFragment = url.prefix { $0 != "#" }
        guard let question = beforeFragment.firstIndex(of: "?") else { return nil }
        let query = beforeFragment[beforeFragment.index(after: question)...]
        // Most URLs carry no click id: skip parsing their query at all.
        guard Array(query.utf8).withUnsafeBufferPointer({ ASCII.contains($0, "fbclid=") }) else { return nil }
        guard let value = QueryParameters(parsing: query).values("fbclid").first, !value.isEmpty, value.utf8.count <= 500,
            value.consists(of: { ASCII.isIdentifier($0) || $0 == 46 }, length: 1...500)
        else { return nil }
        return value
    }

    private static func normalizeUserData(_ value: JSONValue?, warnings: inout [String]) throws -> ([String: JSONValue], MatchKeys) {
        guard let value else { return ([:], []) }
        guard let input = value.object else { throw reject("invalid_field", "userData must be an object.") }
        var output: [String: JSONValue] = [:]
        output.reserveCapacity(input.count + 1)
        var keys = MatchKeys()
        for key in input.keys.sorted() {
            let raw = input[key]!
            if UserDataNormalizer.hashedKeys.contains(key) {
                let values: [JSONValue] = raw.array ?? [raw]
                var hashed: [String] = []
                for item in values {
                    guard let text = item.string ?? item.integer.map(String.init) else {
                        throw reject("invalid_field", "userData.\(key) must be a string or an array of strings.")
                    }
                    switch HashedInput(Array(text.utf8)) {
                    case .paramBuilder(let value):
                        if !hashed.contains(value) { hashed.append(value) }
                        continue
                    case .malformed:
                        throw reject(
                            "invalid_hash",
                            "userData.\(key) looks hashed but is not a SHA-256 digest in a form Meta accepts "
                                + "(64 hex digits, or a Parameter Builder value: 64 hex digits, a dot and its suffix).")
                    case .digest, .plain:
                        break
                    }
                    switch UserDataNormalizer.normalize(key, text) {
                    case .success(let normalized):
                        let digest = UserDataNormalizer.hash(normalized)
                        if !hashed.contains(digest) { hashed.append(digest) }
                    case .failure(let problem):
                        warnings.append("userData.\(key) \(problem.message); that value was left out")
                    }
                }
                guard !hashed.isEmpty else { continue }
                output[key] = raw.array == nil ? .string(hashed[0]) : .array(hashed.map(JSONValue.string))
                keys.insert(key)
            } else if UserDataNormalizer.plainKeys.contains(key) {
                let number = UserDataNormalizer.numericIdKeys.contains(key) ? raw.integer.flatMap { $0 >= 0 ? String($0) : nil } : nil
                guard let text = number ?? raw.string?.trimmingWhitespace, !text.isEmpty, text.utf8.count <= 2048 else {
                    throw reject(
                        "invalid_field",
                        "userData.\(key) must be a non-empty string\(UserDataNormalizer.numericIdKeys.contains(key) ? " or a whole number" : "")."
                    )
                }
                if key == "client_ip_address" && !UserDataNormalizer.isIPAddress(text) {
                    warnings.append("userData.client_ip_address is not an IPv4 or IPv6 address; it was left out")
                    continue
                }
                output[key] = .string(text)
                keys.insert(key)
            } else {
                // Never sent: Meta might take an unknown key's value as given, unhashed.
                warnings.append("userData.\(String(key.prefix(40))) is not a key Meta knows; it was left out")
            }
        }
        return (output, keys)
    }

    private static func normalizeCustomData(_ value: JSONValue, eventName: String) throws -> [String: JSONValue] {
        guard let input = value.object else { throw reject("invalid_field", "customData must be an object.") }
        var output: [String: JSONValue] = [:]
        output.reserveCapacity(input.count)
        for (key, item) in input {
            let canonical = customDataKeys[key] ?? key
            guard output[canonical] == nil else { throw reject("invalid_field", "customData.\(canonical) is given twice.") }
            output[canonical] = item
        }
        if let value = output["value"] {
            guard let number = value.number, isValue(number) else {
                throw reject("invalid_field", "customData.value must be a number.")
            }
            output["value"] = value.integer.map(JSONValue.int) ?? .double(number)
        }
        if let currency = output["currency"] {
            var code: [UInt8] = []
            guard var given = currency.string?.trimmingWhitespace, given.withUTF8({ appendCurrency($0, to: &code) }) else {
                throw reject("invalid_field", "customData.currency must be a 3-letter ISO 4217 code.")
            }
            output["currency"] = .string(String(decoding: code, as: UTF8.self))
        }
        if eventName == "Purchase" && (output["value"] == nil || output["currency"] == nil) {
            throw reject("missing_field", "Purchase events need customData.value and customData.currency.")
        }
        if let type = output["content_type"], !contentTypes.contains(type.string ?? "") {
            throw reject("invalid_field", "customData.content_type must be one of \(contentTypes.sorted().joined(separator: ", ")).")
        }
        if let category = output["delivery_category"], !deliveryCategories.contains(category.string ?? "") {
            throw reject("invalid_field", "customData.delivery_category must be in_store, curbside or home_delivery.")
        }
        if let ids = output["content_ids"] {
            guard let list = ids.array, list.allSatisfy({ $0.string != nil || $0.integer != nil }) else {
                throw reject("invalid_field", "customData.content_ids must be an array of ids.")
            }
            output["content_ids"] = .array(list.map { $0.string.map(JSONValue.string) ?? .string(String($0.integer!)) })
        }
        if let contents = output["contents"] {
            guard let list = contents.array else { throw reject("invalid_field", "customData.contents must be an array.") }
            output["contents"] = .array(
                try list.map { item in
                    guard let object = item.object, object["id"] != nil else {
                        throw reject("invalid_field", "Each of customData.contents needs an id.")
                    }
                    var content: [String: JSONValue] = [:]
                    for (key, value) in object {
                        content[["itemPrice": "item_price", "deliveryCategory": "delivery_category"][key] ?? key] = value
                    }
                    if let quantity = content["quantity"], quantity.integer == nil {
                        throw reject("invalid_field", "customData.contents quantity must be a whole number.")
                    }
                    if let price = content["item_price"], price.number?.isFinite != true {
                        throw reject("invalid_field", "customData.contents item_price must be a number.")
                    }
                    if let category = content["delivery_category"], !deliveryCategories.contains(category.string ?? "") {
                        throw reject("invalid_field", "customData.contents delivery_category must be in_store, curbside or home_delivery.")
                    }
                    return .object(content)
                })
        }
        for numeric in ["num_items", "predicted_ltv", "net_revenue"] {
            if let item = output[numeric], item.number?.isFinite != true {
                throw reject("invalid_field", "customData.\(numeric) must be a number.")
            }
        }
        return output
    }

    /// `app_data` as Meta documents it for app events: the two tracking flags (booleans, or 0
    /// and 1) and `extinfo`, 16 strings beginning with `a2` (Android) or `i2` (iOS); the other
    /// keys Meta lists pass as given.
    private static func appData(_ value: JSONValue) throws -> [String: JSONValue] {
        guard let input = value.object else { throw reject("invalid_field", "appData must be an object.") }
        let names = [
            "advertiserTrackingEnabled": "advertiser_tracking_enabled", "applicationTrackingEnabled": "application_tracking_enabled",
            "campaignIds": "campaign_ids", "installReferrer": "install_referrer", "installerPackage": "installer_package",
            "urlSchemes": "url_schemes", "windowsAttributionId": "windows_attribution_id", "considerViews": "consider_views",
            "includeDwellData": "include_dwell_data", "includeVideoData": "include_video_data", "receiptData": "receipt_data",
        ]
        var output: [String: JSONValue] = [:]
        for (key, item) in input { output[names[key] ?? key] = item }
        let known: Set<String> = Set(names.values).union(["extinfo"])
        if let unknown = output.keys.sorted().first(where: { !known.contains($0) }) {
            throw reject("unknown_field", "Unknown appData key \"\(String(unknown.prefix(40)))\".")
        }
        for flag in ["advertiser_tracking_enabled", "application_tracking_enabled"] {
            guard let item = output[flag] else { throw reject("missing_field", "appData.\(flag) is required.") }
            if let bool = item.bool {
                output[flag] = .bool(bool)
            } else if let number = item.integer, number == 0 || number == 1 {
                output[flag] = .bool(number == 1)
            } else {
                throw reject("invalid_field", "appData.\(flag) must be true or false.")
            }
        }
        guard let extinfo = output["extinfo"]?.array, extinfo.count == 16, extinfo.allSatisfy({ $0.string != nil }),
            ["a2", "i2"].contains(extinfo[0].string!)
        else {
            throw reject("invalid_field", "appData.extinfo must be 16 strings, the first a2 (Android) or i2 (iOS).")
        }
        return output
    }

    /// Limited Data Use, in Meta's shape (`data_processing_options: []` or `["LDU"]` with
    /// `data_processing_options_country` and `_state` beside it) or in one object
    /// (`dataProcessingOptions: {"options": [...], "country": n, "state": n}`).
    private static func dataProcessingOptions(_ fields: [String: JSONValue]) throws -> [String: JSONValue] {
        let country = fields["data_processing_options_country"]
        let state = fields["data_processing_options_state"]
        guard let value = fields["data_processing_options"] else {
            guard country == nil && state == nil else {
                throw reject("invalid_field", "data_processing_options_country and _state go with data_processing_options.")
            }
            return [:]
        }
        let options: [JSONValue]
        let location: [(name: String, key: String, value: JSONValue?)]
        if let list = value.array {
            options = list
            location = [
                ("data_processing_options_country", "data_processing_options_country", country),
                ("data_processing_options_state", "data_processing_options_state", state),
            ]
        } else if let object = value.object, let list = object["options"]?.array,
            Set(object.keys).isSubset(of: ["options", "country", "state"]), country == nil, state == nil
        {
            options = list
            location = [
                ("dataProcessingOptions.country", "data_processing_options_country", object["country"]),
                ("dataProcessingOptions.state", "data_processing_options_state", object["state"]),
            ]
        } else {
            throw reject(
                "invalid_field",
                #"data_processing_options must be [] or ["LDU"] (with data_processing_options_country and _state), or {"options":[...],"country":n,"state":n}."#
            )
        }
        guard options.allSatisfy({ $0.string == "LDU" }), options.count <= 1 else {
            throw reject("invalid_field", #"data_processing_options must be [] or ["LDU"]."#)
        }
        var result: [String: JSONValue] = ["data_processing_options": .array(options)]
        for (name, key, item) in location {
            guard let item else { continue }
            guard let number = item.integer, number >= 0 else { throw reject("invalid_field", "\(name) must be a whole number.") }
            result[key] = .int(number)
        }
        return result
    }
}
