import CompassMeta
import CompassPlatform

/// Where a tenant's events go. Each Meta `action_source` may have a dataset of its own
/// (`Settings.datasets`: a store's sales to an offline dataset, WhatsApp conversions to a
/// messaging one); every other event goes to the default pixel (`pixelId`). Datasets and pixels
/// are one kind of object at Meta (an `AdsPixel`), listed by the same picker.
extension Integration.Settings {
    /// How long a test event code applies when no end is given with it.
    package static let testEventCodeLifetime: TimeInterval = 24 * 3600
    /// The latest end a test event code may be given: a test, not a way of working.
    package static let testEventCodeLongestLifetime: TimeInterval = 30 * 86_400

    /// The dataset an event of `actionSource` goes to: its route, else the default pixel; nil
    /// when neither is chosen.
    package func dataset(for actionSource: String) -> String? { datasets?[actionSource] ?? pixelId }

    /// Every dataset the tenant's events can go to, each once: the default pixel first, then the
    /// routes' datasets by action source.
    package var datasetsInUse: [String] {
        var ids: [String] = pixelId.map { [$0] } ?? []
        for source in (datasets ?? [:]).keys.sorted() {
            if let id = datasets?[source], !ids.contains(id) { ids.append(id) }
        }
        return ids
    }

    /// Whether only offline sources (`physical_store`) route to `dataset`: Meta keeps such a
    /// dataset's quality figures apart from a website's.
    package func isOfflineDataset(_ dataset: String) -> Bool {
        guard dataset != pixelId else { return false }
        let sources = (datasets ?? [:]).filter { $0.value == dataset }.keys
        return !sources.isEmpty && sources.allSatisfy { Self.offlineActionSources.contains($0) }
    }

    /// A request's events by destination, all with `testEventCode`: one group, without a look
    /// at each event, when no action source has a route of its own. Events routed nowhere are
    /// left out.
    package func destinations<T>(
        of items: [T], testEventCode: String?, actionSource: (T) -> String
    ) -> [(Destination, [T])] {
        guard datasets?.isEmpty == false else {
            return pixelId.map { [(Destination(dataset: $0, testEventCode: testEventCode), items)] } ?? []
        }
        return Destination.group(items) { item in
            dataset(for: actionSource(item)).map { Destination(dataset: $0, testEventCode: testEventCode) }
        }
    }

    /// Meta's action sources of events that happen away from a website or an app.
    package static let offlineActionSources: Set<String> = ["physical_store"]

    /// A code as Meta's Test Events tool shows it: 1 to 64 letters and digits.
    package static func isValidTestEventCode(_ code: String) -> Bool { code.consists(of: ASCII.isAlphanumeric, length: 1...64) }

    /// The tenant's test event code while it applies: a code past its end is never sent, even
    /// before refresh-cron clears it.
    package func testEventCode(at now: Date) -> String? {
        guard let code = testEventCode else { return nil }
        if let end = testEventCodeExpiresAt, end <= now { return nil }
        return code
    }
}

extension Integration {
    /// Why Meta cannot take events for `dataset` now, if it said so.
    package func problem(of dataset: String) -> PixelProblem? {
        dataset == config.pixelId ? pixelProblem : datasetProblems?[dataset]
    }

    package mutating func setProblem(_ problem: PixelProblem?, of dataset: String) {
        if dataset == config.pixelId {
            pixelProblem = problem
        } else {
            var problems = datasetProblems ?? [:]
            problems[dataset] = problem
            datasetProblems = problems.isEmpty ? nil : problems
        }
    }

    /// How many of the tenant's datasets Meta cannot reach now (the `pixels_unavailable` gauge).
    package var unavailableDatasets: Int { (pixelProblem == nil ? 0 : 1) + (datasetProblems?.count ?? 0) }

    /// The problems of the datasets still in use after a change of settings, kept by dataset
    /// (a dataset newly chosen starts without one).
    package mutating func keepProblems(from earlier: Integration) {
        let inUse = config.datasetsInUse
        var problems: [String: PixelProblem] = [:]
        var pixel: PixelProblem? = nil
        for id in inUse {
            guard let problem = earlier.problem(of: id) else { continue }
            if id == config.pixelId { pixel = problem } else { problems[id] = problem }
        }
        pixelProblem = pixel
        datasetProblems = problems.isEmpty ? nil : problems
    }
}

/// Where one group of a request's or a drain's events goes: a dataset, with the test code the
/// events carry (a request's own, else the tenant's while it applies).
package struct Destination: Hashable, Sendable {
    package var dataset: String
    package var testEventCode: String?

    package init(dataset: String, testEventCode: String?) {
        self.dataset = dataset
        self.testEventCode = testEventCode
    }

    /// `items` grouped by destination, groups in the order of their first item, items in order
    /// within each; an item whose event has no dataset is left out (the caller says why).
    package static func group<T>(_ items: [T], by destination: (T) -> Destination?) -> [(Destination, [T])] {
        var order: [Destination] = []
        var groups: [Destination: [T]] = [:]
        for item in items {
            guard let target = destination(item) else { continue }
            if groups[target] == nil { order.append(target) }
            groups[target, default: []].append(item)
        }
        return order.map { ($0, groups[$0]!) }
    }
}
