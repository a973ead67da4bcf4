import CompassMeta
import CompassPlatform
import CompassStorage

/// refresh-cron's end of test event codes. A code stops applying at its end whatever happens
/// (`Integration.Settings.testEventCode(at:)`); this job then clears it from the settings, so
/// that the tenant sees test mode is over. Each tenant with a code has an entry at its end in
/// `meta/test-code-due/<minute>/<tenant>`; a code saved before codes ended is given 24 hours
/// from the first run that finds it (a walk of the integrations, 20 pages of 500 a run).
package struct TestEventCodeExpiry {
    package let dependencies: Dependencies

    package static let prefix = "meta/test-code-due/"
    /// Where the walk for codes saved before codes ended stopped, and its end marker.
    package static let walkCursor = "meta/refresh/test-codes-cursor"
    package static let walkComplete = "meta/refresh/test-codes-indexed"

    package struct Summary: Codable, Sendable, Equatable {
        /// Codes past their end, cleared.
        package var cleared = 0
        /// Entries of codes cleared or changed meanwhile: dropped or moved to the new end.
        package var stale = 0
    }

    package init(dependencies: Dependencies) {
        self.dependencies = dependencies
    }

    fileprivate var index: DueIndex { DueIndex(store: dependencies.store, prefix: Self.prefix) }
    package var now: Date { dependencies.clock.now }

    /// The tenant's code ends at `end`: refresh-cron clears it then.
    package static func add(_ tenant: String, at end: Date, dependencies: Dependencies) throws(StoreError) {
        try DueIndex(store: dependencies.store, prefix: prefix).add(tenant, at: end)
    }

    package func run(until deadline: Date?) throws(StoreError) -> Summary {
        let job = Job(expiry: self, tally: Tally(Summary()))
        _ = try DueJobRunner(clock: dependencies.clock).run(job, until: deadline)
        return job.tally.value
    }

    private struct Job: DueJob {
        let expiry: TestEventCodeExpiry
        let tally: Tally<Summary>

        var index: DueIndex { expiry.index }
        var concurrency: Int { 1 }
        func indexOnce() throws(StoreError) { try expiry.indexOnce() }
        func work(_ entry: (key: String, tenant: String)) throws(StoreError) {
            let cleared = try expiry.clear(entry.tenant, entry: entry.key)
            tally.add { if cleared { $0.cleared += 1 } else { $0.stale += 1 } }
        }
    }

    /// One due entry: the code cleared if it has ended, the entry moved to the code's end if the
    /// code changed meanwhile, dropped if there is no code any more. A store failure keeps the
    /// entry (the run stops; the next one comes back to it).
    fileprivate func clear(_ tenant: String, entry: String) throws(StoreError) -> Bool {
        var cleared = false
        var end: Date? = nil
        try change(tenant) { settings in
            guard settings.testEventCode != nil else { return false }
            guard settings.testEventCode(at: now) == nil else {
                end = settings.testEventCodeExpiresAt
                return false
            }
            settings.testEventCode = nil
            settings.testEventCodeExpiresAt = nil
            cleared = true
            return true
        }
        // Its replacement written first: a code with an end always has an entry.
        if let end { try index.add(tenant, at: end) }
        if end.map({ DueIndex.key(tenant, at: $0, prefix: Self.prefix) }) != entry { _ = try dependencies.store.delete(entry) }
        if cleared { dependencies.logger.info("test_event_code_ended", ["tenant": .string(tenant)]) }
        return cleared
    }

    /// Applies `body` to the tenant's settings (`IntegrationLifecycle.updateOrThrow`).
    private func change(_ tenant: String, _ body: (inout Integration.Settings) -> Bool) throws(StoreError) {
        _ = try IntegrationLifecycle(dependencies: dependencies).updateOrThrow(tenant) { body(&$0.config) }
    }

    /// Gives each code saved before codes ended an end 24 hours on, and its entry: at most
    /// `pages` pages of 500 integrations a run, resumed by the next.
    fileprivate func indexOnce(pages: Int = 20) throws(StoreError) {
        let store = dependencies.store
        guard try store.get(Self.walkComplete) == nil else { return }
        let records = dependencies.records
        var cursor = try records.cursor(at: Self.walkCursor)
        for _ in 0..<pages {
            let page = try store.scan(prefix: RecordKey.integrationsPrefix, after: cursor, limit: 500)
            for (key, value) in page.entries {
                guard let integration = try? JSON.decode(Integration.self, from: value.value),
                    integration.config.testEventCode != nil, integration.config.testEventCodeExpiresAt == nil
                else { continue }
                let tenant = String(key.dropFirst(RecordKey.integrationsPrefix.count))
                let end = now.addingTimeInterval(Integration.Settings.testEventCodeLifetime)
                // The entry first: a code with an end always has an entry to clear it. A store
                // failure stops the walk where it is, for the next run.
                try index.add(tenant, at: end)
                try change(tenant) { settings in
                    guard settings.testEventCode != nil, settings.testEventCodeExpiresAt == nil else { return false }
                    settings.testEventCodeExpiresAt = end
                    return true
                }
            }
            cursor = page.cursor
            guard cursor != nil else {
                try store.put(Self.walkComplete, Array(now.formatted(.iso8601).utf8))
                try records.setCursor(nil, at: Self.walkCursor)
                return
            }
        }
        try records.setCursor(cursor, at: Self.walkCursor)
    }
}
