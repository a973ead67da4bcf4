import CompassMeta
import CompassPlatform
import CompassStorage

/// GET / PUT /api/connect/meta/settings: the connection's status, ad accounts and choices
/// (never the token); the ad account and pixel picker.
package struct SettingsHandler: Handler {
    package static let name = "settings"
    package static let methods = ["GET", "PUT"]
    package static let paths = ["/api/connect/meta/settings"]
    package static let takesJSONBody = true
    package let dependencies: Dependencies

    package struct View: Encodable {
        package var provider = "meta"
        package var status: IntegrationStatus
        package var statusReason: String?
        package var connectedAt: Date
        package var updatedAt: Date
        package var adAccounts: [AdAccount]
        package var adAccountId: String?
        package var pixelId: String?
        /// `available`, or `unavailable` while Meta says the pixel cannot be reached (events wait).
        package var pixelStatus: String?
        package var pixelStatusReason: String?
        package var testEventCode: String?
        /// When the test event code stops applying (refresh-cron then clears it).
        package var testEventCodeExpiresAt: Date?
        /// The dataset of each action source that does not go to `pixelId`.
        package var datasets: [String: String]?
        /// Every dataset events go to (the default pixel first): its status, figures and quality.
        package var datasetStatus: [DatasetView]
        package var tokenExpiresAt: Date?
        package var dataAccessExpiresAt: Date?
        /// `user` or `system_user` (Facebook Login for Business), and the client's business.
        package var tokenType: String?
        package var clientBusinessId: String?
        package var grantedScopes: [String]
        package var missingScopes: [String]
        /// The last renewal or check of the token by refresh-cron, and its outcome.
        package var lastRefresh: RefreshOutcome?
        package var delivery: DeliveryView
        /// Present when `?adAccountId=` asked for the account's pixels.
        package var pixels: [PixelView]?
        /// Meta's Event Match Quality for the chosen pixel, as refresh-cron last fetched it.
        package var eventMatchQuality: MatchQuality?
    }

    package struct DeliveryView: Encodable {
        package var queued: Int
        package var dead: Int
        package var eventsSent: Int
        package var lastDeliveryAt: Date?
        package var lastFailureAt: Date?
        package var lastFailure: String?
        /// Share of delivered events carrying each match key: what event match quality rests on.
        package var matchKeyCoverage: [String: Double]
    }

    package struct DatasetView: Encodable {
        package var id: String
        /// The action sources routed to it; `default` for the pixel that takes every other.
        package var actionSources: [String]
        /// `available`, or `unavailable` while Meta says it cannot be reached (its events wait).
        package var status: String
        package var statusReason: String?
        package var eventsSent: Int
        package var lastDeliveryAt: Date?
        package var lastFailureAt: Date?
        package var lastFailure: String?
        /// Meta's quality figures for it (offline ones for an offline dataset), as last fetched.
        package var eventMatchQuality: MatchQuality?
    }

    package struct PixelView: Encodable, Equatable {
        package var id: String
        package var name: String?
        package var lastFiredTime: String?
        /// `ad_account` (attached to the account) or `business` (owned by the account's business).
        package var source: String
    }

    package func handle(_ request: CGIRequest) throws -> CGIResponse {
        let session = try dependencies.authenticate(request)
        let tenant = session.tenantId
        guard let (integration, version) = try dependencies.records.load(Integration.self, at: RecordKey.integration(tenant)) else {
            throw APIError.notConnected
        }
        switch request.method {
        case "PUT":
            let updated = try update(integration, version: version, body: request.body, tenant: tenant)
            return .json(200, try view(updated, tenant: tenant))
        default:
            var result = try view(integration, tenant: tenant)
            if request.query.contains("adAccountId") {
                guard let accountId = request.query.single("adAccountId"), AdAccountId.isValid(accountId) else {
                    throw APIError.badRequest("invalid_ad_account_id", "adAccountId must be one act_<digits> value.")
                }
                guard integration.config.adAccounts.contains(where: { $0.id == accountId }) else {
                    throw APIError(422, "unknown_ad_account", "That ad account is not one this connection granted.")
                }
                result.pixels = try pixels(of: accountId, integration: integration, tenant: tenant)
            }
            return .json(200, result)
        }
    }

    private func loadCredential(_ tenant: String) throws -> IntegrationCredential {
        let credential: IntegrationCredential? = try dependencies.records.load(
            IntegrationCredential.self, at: RecordKey.credential(tenant))?.0
        guard let credential else {
            throw APIError(409, "meta_token_missing", "The connection has no stored token; connect Meta again.")
        }
        return credential
    }

    private func view(_ integration: Integration, tenant: String) throws -> View {
        let records = dependencies.records
        let credential = try? records.load(IntegrationCredential.self, at: RecordKey.credential(tenant))?.0
        let stats = try records.loadUnlessCorrupt(DeliveryStats.self, at: RecordKey.deliveryStats(tenant))?.0 ?? DeliveryStats()
        var coverage: [String: Double] = [:]
        for key in ConversionEvent.matchKeysTracked {
            let share = stats.eventsSent == 0 ? 0 : Double(stats.eventsWithKey[key] ?? 0) / Double(stats.eventsSent)
            coverage[key] = (share * 1000).rounded() / 1000
        }
        let delivery = DeliveryView(
            queued: try records.count(prefix: RecordKey.outboxPrefix(tenant)),
            dead: try records.count(prefix: RecordKey.deadPrefix(tenant)),
            eventsSent: stats.eventsSent, lastDeliveryAt: stats.lastDeliveryAt,
            lastFailureAt: stats.lastFailureAt, lastFailure: stats.lastFailure, matchKeyCoverage: coverage)
        let settings = integration.config
        // A code past its end is not shown, even before refresh-cron has cleared it.
        let activeCode = settings.testEventCode(at: dependencies.clock.now)
        let datasets = datasetViews(integration, stats: stats, tenant: tenant)
        return View(
            status: integration.status, statusReason: integration.statusReason,
            connectedAt: integration.connectedAt, updatedAt: integration.updatedAt,
            adAccounts: settings.adAccounts, adAccountId: settings.adAccountId, pixelId: settings.pixelId,
            pixelStatus: settings.pixelId == nil ? nil : integration.pixelProblem == nil ? "available" : "unavailable",
            pixelStatusReason: integration.pixelProblem?.reason, testEventCode: activeCode,
            testEventCodeExpiresAt: activeCode == nil ? nil : settings.testEventCodeExpiresAt,
            datasets: settings.datasets, datasetStatus: datasets,
            tokenExpiresAt: credential?.expiresAt, dataAccessExpiresAt: credential?.dataAccessExpiresAt,
            tokenType: integration.tokenType ?? "user", clientBusinessId: integration.clientBusinessId,
            grantedScopes: integration.grantedScopes, missingScopes: integration.missingScopes,
            lastRefresh: integration.lastRefresh, delivery: delivery,
            eventMatchQuality: datasets.first { $0.id == settings.pixelId }?.eventMatchQuality)
    }

    private func datasetViews(_ integration: Integration, stats: DeliveryStats, tenant: String) -> [DatasetView] {
        let settings = integration.config
        return settings.datasetsInUse.map { id in
            var sources = (settings.datasets ?? [:]).filter { $0.value == id }.keys.sorted()
            if id == settings.pixelId { sources.append("default") }
            let problem = integration.problem(of: id)
            let figures = stats.figures(of: id, pixelId: settings.pixelId)
            return DatasetView(
                id: id, actionSources: sources, status: problem == nil ? "available" : "unavailable", statusReason: problem?.reason,
                eventsSent: figures.eventsSent, lastDeliveryAt: figures.lastDeliveryAt, lastFailureAt: figures.lastFailureAt,
                lastFailure: figures.lastFailure, eventMatchQuality: QualityFetcher.kept(tenant, dataset: id, records: dependencies.records)
            )
        }
    }

    /// The account's pixels and, when the account belongs to a business, the pixels that business
    /// owns (a pixel need not be attached to the account to receive its events). Asked of Meta
    /// with the tenant's token.
    private func pixels(of accountId: String, integration: Integration, tenant: String) throws -> [PixelView] {
        let credential = try loadCredential(tenant)
        let token = try dependencies.openToken(credential, tenant: tenant)
        let graph = try dependencies.graph()
        var views = try graph.pixels(adAccountId: accountId, token: token).map {
            PixelView(id: $0.id, name: $0.name, lastFiredTime: $0.lastFiredTime, source: "ad_account")
        }
        let business = integration.config.adAccounts.first { $0.id == accountId }?.business?.id
        if let business, business.consists(of: ASCII.isDigit, length: 1...32) {
            // The business's own pixels, then those other businesses share with it.
            let lists: [(source: String, fetch: () throws(GraphFailure) -> [GraphClient.Pixel])] = [
                ("business", { () throws(GraphFailure) in try graph.ownedPixels(businessId: business, token: token) }),
                ("shared", { () throws(GraphFailure) in try graph.clientPixels(businessId: business, token: token) }),
            ]
            for list in lists {
                do throws(GraphFailure) {
                    for pixel in try list.fetch() where !views.contains(where: { $0.id == pixel.id }) {
                        views.append(PixelView(id: pixel.id, name: pixel.name, lastFiredTime: pixel.lastFiredTime, source: list.source))
                    }
                } catch {
                    // Without business_management (or with the business's list unavailable) the
                    // account's own pixels are still a complete answer to "which pixels can I pick".
                    if error.kind == .invalidToken { throw error.apiError }
                    dependencies.logger.info("\(list.source == "business" ? "owned" : "shared")_pixels_unavailable", error.logFields)
                }
            }
        }
        return views
    }

    // MARK: PUT

    /// `{"adAccountId","pixelId","datasets","testEventCode","testEventCodeExpiresAt"}`; an absent
    /// key leaves that choice as it is, `null` clears it. `datasets` changes the routes it names
    /// (`{"physical_store":"ID","business_messaging":null}`; `null` for all of them). A new
    /// account without a pixel clears the pixel and the routes.
    package struct Update: Decodable {
        package enum Change<T: Decodable>: Decodable {
            case keep, clear
            case set(T)
            package init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                self = container.decodeNil() ? .clear : .set(try container.decode(T.self))
            }
        }
        package var adAccountId: Change<String> = .keep
        package var pixelId: Change<String> = .keep
        package var testEventCode: Change<String> = .keep
        package var testEventCodeExpiresAt: Change<Date> = .keep
        package var datasets: Change<[String: String?]> = .keep

        package enum CodingKeys: String, CodingKey, CaseIterable {
            case adAccountId, pixelId, datasets, testEventCode, testEventCodeExpiresAt
        }

        package init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            for key in container.allKeys where CodingKeys(rawValue: key.stringValue) == nil {
                throw APIError.badRequest(
                    "unknown_field",
                    "Unknown field \"\(String(key.stringValue.prefix(40)))\"; allowed: "
                        + CodingKeys.allCases.map(\.rawValue).joined(separator: ", ") + ".")
            }
            let known = try decoder.container(keyedBy: CodingKeys.self)
            // `decodeIfPresent` would read null as absent; null here means "clear".
            func change<T>(_ key: CodingKeys, _: T.Type = T.self) throws -> Change<T> {
                known.contains(key) ? try known.decode(Change<T>.self, forKey: key) : .keep
            }
            adAccountId = try change(.adAccountId)
            pixelId = try change(.pixelId)
            testEventCode = try change(.testEventCode)
            testEventCodeExpiresAt = try change(.testEventCodeExpiresAt)
            datasets = try change(.datasets)
        }
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    private func update(_ integration: Integration, version: UInt64, body: [UInt8], tenant: String) throws -> Integration {
        let change: Update
        do {
            change = try JSON.decode(Update.self, from: body)
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.badRequest(
                "invalid_json",
                "The body must be a JSON object with adAccountId, pixelId, datasets (action source to dataset id), testEventCode "
                    + "and testEventCodeExpiresAt (an ISO 8601 time).")
        }
        var settings = integration.config
        // What needs no call to Meta is checked first; the picker's listing is asked once.
        try setTestEventCode(change, into: &settings)
        try Self.checkRoutes(change.datasets)
        var listing: (account: String, pixels: [PixelView])? = nil
        // The listing of the account chosen (by this change or before).
        let reachable = { (account: String?) throws -> [PixelView] in
            guard let account else {
                throw APIError(422, "ad_account_required", "Choose an ad account before a pixel or a dataset.")
            }
            if listing?.account != account { listing = (account, try pixels(of: account, integration: integration, tenant: tenant)) }
            return listing?.pixels ?? []
        }
        try choose(change, into: &settings, reachable: reachable)
        if case .set(let named) = change.datasets {
            try route(named, into: &settings, reachable: reachable)
        } else if case .clear = change.datasets {
            settings.datasets = nil
        }
        var updated = integration
        updated.config = settings
        updated.keepProblems(from: integration)
        updated.updatedAt = dependencies.clock.now
        // A code's end has its entry before the record names it: it is always cleared.
        if let end = settings.testEventCodeExpiresAt, settings.testEventCode != nil, end != integration.config.testEventCodeExpiresAt {
            try TestEventCodeExpiry.add(tenant, at: end, dependencies: dependencies)
        }
        do {
            try dependencies.records.replace(updated, at: RecordKey.integration(tenant), version: version)
        } catch {
            guard error == .versionMismatch else { throw error }
            throw APIError(409, "conflict", "The settings changed while this update was made; reload and try again.")
        }
        saved(updated, replacing: integration, tenant: tenant)
        return updated
    }

    /// What follows a saved change: the gauge of unreachable datasets, the figures of datasets
    /// no longer chosen removed, and a newly chosen dataset's waiting events and quality due now.
    private func saved(_ updated: Integration, replacing integration: Integration, tenant: String) {
        let settings = updated.config
        let cleared = integration.unavailableDatasets - updated.unavailableDatasets
        if cleared != 0 { dependencies.metrics.add(MetricCatalog.pixelsUnavailable, [:], -cleared) }
        for id in integration.config.datasetsInUse where !settings.datasetsInUse.contains(id) {
            _ = try? dependencies.store.delete(RecordKey.datasetQuality(tenant, id))
        }
        if settings.pixelId != integration.config.pixelId { _ = try? dependencies.store.delete(RecordKey.quality(tenant)) }
        // Events that waited for a dataset go at the next cron run, and its quality figures are
        // fetched then, then daily.
        if settings.datasetsInUse.contains(where: { !integration.config.datasetsInUse.contains($0) }) {
            EventPipeline(dependencies: dependencies, tenant: tenant).outboxDueNow()
            QualityFetcher.dueNow(tenant, dependencies: dependencies)
        }
        dependencies.logger.info(
            "settings_updated",
            [
                "has_pixel": .bool(settings.pixelId != nil), "datasets": .int(settings.datasets?.count ?? 0),
                "test_mode": .bool(settings.testEventCode != nil),
            ])
    }

    /// The ad account and the pixel a PUT names. A new account clears the pixel and the routes.
    private func choose(
        _ change: Update, into settings: inout Integration.Settings, reachable: (String?) throws -> [PixelView]
    ) throws {
        switch change.adAccountId {
        case .keep: break
        case .clear:
            settings.adAccountId = nil
            settings.pixelId = nil
            settings.datasets = nil
        case .set(let id):
            guard AdAccountId.isValid(id) else {
                throw APIError.badRequest("invalid_ad_account_id", "adAccountId must look like act_<digits>.")
            }
            guard settings.adAccounts.contains(where: { $0.id == id }) else {
                throw APIError(422, "unknown_ad_account", "That ad account is not one this connection granted.")
            }
            if settings.adAccountId != id {
                settings.pixelId = nil
                settings.datasets = nil
            }
            settings.adAccountId = id
        }
        switch change.pixelId {
        case .keep: break
        case .clear: settings.pixelId = nil
        case .set(let id):
            guard PixelId.isValid(id) else { throw APIError.badRequest("invalid_pixel_id", "pixelId must be digits.") }
            guard try reachable(settings.adAccountId).contains(where: { $0.id == id }) else {
                throw APIError(422, "unknown_pixel", "That pixel belongs neither to the chosen ad account nor to its business.")
            }
            settings.pixelId = id
        }
    }

    /// Each route's action source and id, as written (before any call to Meta).
    private static func checkRoutes(_ change: Update.Change<[String: String?]>) throws {
        guard case .set(let named) = change else { return }
        for (source, id) in named {
            guard ConversionEvent.actionSources.contains(source) else {
                throw APIError.badRequest(
                    "invalid_action_source",
                    "datasets keys are Meta's action_source values: \(ConversionEvent.actionSources.sorted().joined(separator: ", ")).")
            }
            if let id, !PixelId.isValid(id) { throw APIError.badRequest("invalid_dataset_id", "Each dataset id must be digits.") }
        }
    }

    /// The routes a PUT names, each id one of the same listing as the picker's (the chosen
    /// account's pixels, its business's and those shared with it); null removes a route.
    private func route(
        _ named: [String: String?], into settings: inout Integration.Settings, reachable: (String?) throws -> [PixelView]
    ) throws {
        var routes = settings.datasets ?? [:]
        for (source, id) in named.sorted(by: { $0.key < $1.key }) {
            guard let id else {
                routes[source] = nil
                continue
            }
            guard try reachable(settings.adAccountId).contains(where: { $0.id == id }) else {
                throw APIError(
                    422, "unknown_dataset",
                    "Dataset \(id) belongs neither to the chosen ad account nor to its business, nor is it shared with it (\(source)).")
            }
            routes[source] = id
        }
        settings.datasets = routes.isEmpty ? nil : routes
    }

    /// The tenant's test event code and when it ends: 24 hours after it is set unless an end is
    /// given with it (at most 30 days on); never without an end.
    private func setTestEventCode(_ change: Update, into settings: inout Integration.Settings) throws {
        let now = dependencies.clock.now
        func end(_ given: Date?) throws -> Date {
            guard let given else { return now.addingTimeInterval(Integration.Settings.testEventCodeLifetime) }
            guard given > now, given <= now.addingTimeInterval(Integration.Settings.testEventCodeLongestLifetime) else {
                throw APIError(
                    422, "invalid_test_event_code_expiry", "testEventCodeExpiresAt must be in the future and at most 30 days from now.")
            }
            return given
        }
        var given: Date? = nil
        switch change.testEventCodeExpiresAt {
        case .keep: break
        case .clear:
            throw APIError.badRequest(
                "invalid_test_event_code_expiry", "A test event code always ends: give testEventCodeExpiresAt a time, or leave it out.")
        case .set(let date): given = date
        }
        switch change.testEventCode {
        case .keep:
            guard let given else { return }
            guard settings.testEventCode != nil else {
                throw APIError(422, "no_test_event_code", "There is no test event code to end; set testEventCode with it.")
            }
            settings.testEventCodeExpiresAt = try end(given)
        case .clear:
            guard given == nil else {
                throw APIError.badRequest("invalid_test_event_code_expiry", "testEventCodeExpiresAt needs a code; testEventCode is null.")
            }
            settings.testEventCode = nil
            settings.testEventCodeExpiresAt = nil
        case .set(let code):
            guard Integration.Settings.isValidTestEventCode(code) else {
                throw APIError.badRequest("invalid_test_event_code", "testEventCode must be 1 to 64 letters and digits, or null.")
            }
            settings.testEventCode = code
            settings.testEventCodeExpiresAt = try end(given)
        }
    }

    package init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }
}
