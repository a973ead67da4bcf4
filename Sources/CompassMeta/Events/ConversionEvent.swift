import CompassPlatform

/// One event from the ingest pipeline, checked against every rule of META-API.md and turned
/// into Meta's payload shape with `user_data` normalized and hashed.
package struct NormalizedEvent: Sendable, Equatable {
    package var eventId: String
    package var eventName: String
    package var eventTime: Int64
    package var actionSource: String
    /// The event exactly as it goes to Meta (snake_case, hashed user data). No raw PII.
    package var payload: JSONValue
    /// Which match keys the event carries, for the tenant's coverage figures.
    package var matchKeys: Set<String>
    package var warnings: [String]

    /// Stable per (event_id, event_name), the pair Meta deduplicates on: a store key segment.
    package var dedupKey: String { Hex.encode(Crypto.sha256(eventName + "\u{0}" + eventId)) }

    package init(eventId: String, eventName: String, eventTime: Int64, actionSource: String, payload: JSONValue, matchKeys: Set<String>, warnings: [String]) {
        self.eventId = eventId
        self.eventName = eventName
        self.eventTime = eventTime
        self.actionSource = actionSource
        self.payload = payload
        self.matchKeys = matchKeys
        self.warnings = warnings
    }
}

package struct EventRejection: Error, Equatable, Sendable {
    package var code: String
    package var message: String
}

package enum ConversionEvent {
    package static let actionSources: Set<String> = ["email", "website", "app", "phone_call", "chat", "physical_store",
                                             "system_generated", "business_messaging", "other"]
    package static let matchKeysTracked = ["em", "ph", "external_id", "fbp", "fbc", "client_ip_address", "client_user_agent"]
    package static let futureToleranceSeconds: Int64 = 60

    private static let topLevelKeys: [String: String] = [
        "eventName": "event_name", "eventTime": "event_time", "actionSource": "action_source", "eventId": "event_id",
        "eventSourceUrl": "event_source_url", "referrerUrl": "referrer_url", "optOut": "opt_out", "userData": "user_data",
        "customData": "custom_data", "dataProcessingOptions": "data_processing_options", "appData": "app_data",
        "dataProcessingOptionsCountry": "data_processing_options_country",
        "dataProcessingOptionsState": "data_processing_options_state",
        "messagingChannel": "messaging_channel", "originalEventData": "original_event_data",
        "attributionData": "attribution_data",
    ]

    /// `content_type` values Meta documents: products, and the other catalogs' items.
    package static let contentTypes: Set<String> = ["product", "product_group", "hotel", "flight", "destination", "home_listing", "vehicle"]
    package static let deliveryCategories: Set<String> = ["in_store", "curbside", "home_delivery"]
    package static let messagingChannels: Set<String> = ["whatsapp", "messenger", "instagram"]

    private static let customDataKeys: [String: String] = [
        "contentIds": "content_ids", "contentType": "content_type", "orderId": "order_id", "numItems": "num_items",
        "predictedLtv": "predicted_ltv", "searchString": "search_string", "contentName": "content_name",
        "contentCategory": "content_category", "deliveryCategory": "delivery_category",
    ]

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

    private static func build(_ raw: JSONValue, tenantId: String, now: Date) throws -> NormalizedEvent {
        guard let input = raw.object else { throw reject("invalid_event", "An event must be a JSON object.") }
        var fields: [String: JSONValue] = [:]
        for (key, value) in input {
            guard let canonical = topLevelKeys[key] ?? (topLevelKeys.values.contains(key) ? key : nil) else {
                throw reject("unknown_field", "Unknown event field \"\(String(key.prefix(40)))\".")
            }
            guard fields[canonical] == nil else { throw reject("invalid_field", "\(canonical) is given twice.") }
            fields[canonical] = value
        }

        guard let name = fields["event_name"]?.string?.trimmingWhitespace, !name.isEmpty, name.count <= 100 else {
            throw reject("missing_field", "eventName is required (1 to 100 characters).")
        }
        guard let source = fields["action_source"]?.string, actionSources.contains(source) else {
            throw reject("invalid_field", "actionSource must be one of \(actionSources.sorted().joined(separator: ", ")).")
        }
        guard let time = fields["event_time"]?.integer else {
            throw reject("missing_field", "eventTime is required: Unix time in seconds.")
        }
        let current = now.unixSeconds
        if time > 100_000_000_000 { throw reject("invalid_field", "eventTime looks like milliseconds; Meta wants seconds.") }
        if time > current + futureToleranceSeconds { throw reject("event_in_future", "eventTime is in the future.") }
        let windowDays: Int64 = source == "physical_store" ? 62 : 7
        if time < current - windowDays * 86_400 {
            throw reject("event_too_old", "eventTime is older than Meta's \(windowDays)-day window.")
        }

        var payload: [String: JSONValue] = ["event_name": .string(name), "event_time": .int(time), "action_source": .string(source)]
        var warnings: [String] = []

        let sourceURL = try optionalURL(fields["event_source_url"], "eventSourceUrl")
        if let sourceURL { payload["event_source_url"] = .string(sourceURL) }
        if let referrer = try optionalURL(fields["referrer_url"], "referrerUrl") { payload["referrer_url"] = .string(referrer) }
        if let optOut = fields["opt_out"] {
            guard let flag = optOut.bool else { throw reject("invalid_field", "optOut must be true or false.") }
            payload["opt_out"] = .bool(flag)
        }

        var (userData, keys) = try normalizeUserData(fields["user_data"], warnings: &warnings)
        if userData["fbc"] == nil, let sourceURL, let fbclid = fbclid(in: sourceURL) {
            userData["fbc"] = .string("fb.1.\(time * 1000).\(fbclid)")
            keys.insert("fbc")
        }
        guard !userData.isEmpty else {
            throw reject("no_user_data", "userData needs at least one customer information key Meta can match on.")
        }
        if source == "website" {
            guard sourceURL != nil else { throw reject("missing_field", "Website events need eventSourceUrl.") }
            guard userData["client_user_agent"] != nil else {
                throw reject("missing_field", "Website events need userData.client_user_agent.")
            }
        }
        payload["user_data"] = .object(userData)

        if let custom = fields["custom_data"] {
            payload["custom_data"] = .object(try normalizeCustomData(custom, eventName: name))
        } else if name == "Purchase" {
            throw reject("missing_field", "Purchase events need customData.value and customData.currency.")
        }
        for (key, value) in try dataProcessingOptions(fields) { payload[key] = value }
        if let app = fields["app_data"] {
            payload["app_data"] = .object(try appData(app))
        } else if source == "app" {
            throw reject("missing_field", "App events need appData (advertiser_tracking_enabled, application_tracking_enabled, extinfo).")
        }
        if let channel = fields["messaging_channel"] {
            guard let name = channel.string, messagingChannels.contains(name) else {
                throw reject("invalid_field", "messagingChannel must be one of \(messagingChannels.sorted().joined(separator: ", ")).")
            }
            payload["messaging_channel"] = .string(name)
        } else if source == "business_messaging" {
            throw reject("missing_field", "business_messaging events need messagingChannel.")
        }
        for (field, name) in [("original_event_data", "originalEventData"), ("attribution_data", "attributionData")] {
            guard let value = fields[field] else { continue }
            guard let object = value.object, !object.isEmpty else { throw reject("invalid_field", "\(name) must be an object.") }
            payload[field] = value
        }

        let eventId: String
        if let given = fields["event_id"] {
            guard let id = given.string?.trimmingWhitespace, !id.isEmpty, id.utf8.count <= 256 else {
                throw reject("invalid_field", "eventId must be a string of 1 to 256 bytes.")
            }
            eventId = id
        } else {
            // The same event content from the same tenant always gets the same id, so a
            // pipeline retry is deduplicated rather than counted twice.
            let canonical = String(decoding: JSON.encode(raw), as: UTF8.self)
            eventId = "cmp_" + String(Hex.encode(Crypto.sha256(tenantId + "\u{0}" + canonical)).prefix(32))
        }
        payload["event_id"] = .string(eventId)
        return NormalizedEvent(eventId: eventId, eventName: name, eventTime: time, actionSource: source,
                               payload: .object(payload), matchKeys: keys, warnings: warnings)
    }

    private static func optionalURL(_ value: JSONValue?, _ field: String) throws -> String? {
        guard let value, value != .null else { return nil }
        guard let text = value.string?.trimmingWhitespace, text.utf8.count <= 2048,
              text.hasPrefix("http://") || text.hasPrefix("https://") else {
            throw reject("invalid_field", "\(field) must be an http(s) URL.")
        }
        return text
    }

    package static func fbclid(in url: String) -> String? {
        guard let question = url.firstIndex(of: "?") else { return nil }
        let query = url[url.index(after: question)...].prefix { $0 != "#" }
        guard let value = QueryParameters(parsing: query).values("fbclid").first, !value.isEmpty, value.utf8.count <= 500,
              value.consists(of: { ASCII.isIdentifier($0) || $0 == 46 }, length: 1...500) else { return nil }
        return value
    }

    private static func normalizeUserData(_ value: JSONValue?, warnings: inout [String]) throws -> ([String: JSONValue], Set<String>) {
        guard let value else { return ([:], []) }
        guard let input = value.object else { throw reject("invalid_field", "userData must be an object.") }
        var output: [String: JSONValue] = [:]
        var keys: Set<String> = []
        for key in input.keys.sorted() {
            let raw = input[key]!
            if UserDataNormalizer.hashedKeys.contains(key) {
                let values: [JSONValue] = raw.array ?? [raw]
                var hashed: [String] = []
                for item in values {
                    guard let text = item.string ?? item.integer.map(String.init) else {
                        throw reject("invalid_field", "userData.\(key) must be a string or an array of strings.")
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
                    throw reject("invalid_field", "userData.\(key) must be a non-empty string\(UserDataNormalizer.numericIdKeys.contains(key) ? " or a whole number" : "").")
                }
                if key == "client_ip_address" && !UserDataNormalizer.isIPAddress(text) {
                    warnings.append("userData.client_ip_address is not an IPv4 or IPv6 address; it was left out")
                    continue
                }
                output[key] = .string(text)
                keys.insert(key)
            } else {
                throw reject("unknown_field", "Unknown userData key \"\(String(key.prefix(40)))\".")
            }
        }
        return (output, keys)
    }

    private static func normalizeCustomData(_ value: JSONValue, eventName: String) throws -> [String: JSONValue] {
        guard let input = value.object else { throw reject("invalid_field", "customData must be an object.") }
        var output: [String: JSONValue] = [:]
        for (key, item) in input {
            let canonical = customDataKeys[key] ?? key
            guard output[canonical] == nil else { throw reject("invalid_field", "customData.\(canonical) is given twice.") }
            output[canonical] = item
        }
        if let value = output["value"] {
            guard let number = value.number, number.isFinite, abs(number) < 1e12 else {
                throw reject("invalid_field", "customData.value must be a number.")
            }
            output["value"] = value.integer.map(JSONValue.int) ?? .double(number)
        }
        if let currency = output["currency"] {
            guard let code = currency.string?.trimmingWhitespace, code.consists(of: { ASCII.isUpper($0) || ASCII.isLower($0) }, length: 3...3) else {
                throw reject("invalid_field", "customData.currency must be a 3-letter ISO 4217 code.")
            }
            output["currency"] = .string(code.lowercased())
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
            output["contents"] = .array(try list.map { item in
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
        for numeric in ["num_items", "predicted_ltv"] {
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
        let names = ["advertiserTrackingEnabled": "advertiser_tracking_enabled", "applicationTrackingEnabled": "application_tracking_enabled",
                     "campaignIds": "campaign_ids", "installReferrer": "install_referrer", "installerPackage": "installer_package",
                     "urlSchemes": "url_schemes", "windowsAttributionId": "windows_attribution_id"]
        var output: [String: JSONValue] = [:]
        for (key, item) in input { output[names[key] ?? key] = item }
        let known: Set<String> = Set(names.values).union(["extinfo", "anon_id", "vendor_id"])
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
              ["a2", "i2"].contains(extinfo[0].string!) else {
            throw reject("invalid_field", "appData.extinfo must be 16 strings, the first a2 (Android) or i2 (iOS).")
        }
        return output
    }

    /// Limited Data Use, in Meta's shape (`data_processing_options: []` or `["LDU"]` with
    /// `data_processing_options_country` and `_state` beside it) or in one object
    /// (`dataProcessingOptions: {"options": [...], "country": n, "state": n}`).
    private static func dataProcessingOptions(_ fields: [String: JSONValue]) throws -> [String: JSONValue] {
        let country = fields["data_processing_options_country"], state = fields["data_processing_options_state"]
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
            location = [("data_processing_options_country", "data_processing_options_country", country),
                        ("data_processing_options_state", "data_processing_options_state", state)]
        } else if let object = value.object, let list = object["options"]?.array,
                  Set(object.keys).isSubset(of: ["options", "country", "state"]), country == nil, state == nil {
            options = list
            location = [("dataProcessingOptions.country", "data_processing_options_country", object["country"]),
                        ("dataProcessingOptions.state", "data_processing_options_state", object["state"])]
        } else {
            throw reject("invalid_field", #"data_processing_options must be [] or ["LDU"] (with data_processing_options_country and _state), or {"options":[...],"country":n,"state":n}."#)
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
