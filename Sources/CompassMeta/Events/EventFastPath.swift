import CompassPlatform

/// The common event normalized straight from the request's bytes into the bytes Meta gets:
/// fields read from a `JSONTape`, match keys normalized byte by byte in ASCII and hashed into the
/// output, the payload written with its keys sorted, no value tree built.
///
/// It takes the events pipelines send every day and declines (nil) everything else: a field it
/// does not handle, a value that is not plain ASCII where a rule reads it, any value that would
/// be dropped with a warning, and every event with a problem. `ConversionEvent.normalize` then
/// takes the event; it holds every rule, and for an event this path takes it gives the same
/// `NormalizedEvent`, byte for byte (`EventFastPathTests` compares the two on generated events).
package enum EventFastPath {
    private enum Field: Int, CaseIterable {
        case eventName, eventTime, actionSource, eventId, eventSourceURL, userData, customData
    }

    private static func field(_ tape: JSONTape.View, _ name: Int) -> Field? {
        switch Int(tape.tokens[name].end - tape.tokens[name].start) {
        case 7: return tape.isString(name, "eventId") ? .eventId : nil
        case 8: return tape.isString(name, "event_id") ? .eventId : tape.isString(name, "userData") ? .userData : nil
        case 9:
            if tape.isString(name, "eventName") { return .eventName }
            if tape.isString(name, "eventTime") { return .eventTime }
            if tape.isString(name, "user_data") { return .userData }
            return nil
        case 10:
            if tape.isString(name, "event_name") { return .eventName }
            if tape.isString(name, "event_time") { return .eventTime }
            if tape.isString(name, "customData") { return .customData }
            return nil
        case 11: return tape.isString(name, "custom_data") ? .customData : nil
        case 12: return tape.isString(name, "actionSource") ? .actionSource : nil
        case 13: return tape.isString(name, "action_source") ? .actionSource : nil
        case 14: return tape.isString(name, "eventSourceUrl") ? .eventSourceURL : nil
        case 16: return tape.isString(name, "event_source_url") ? .eventSourceURL : nil
        default: return nil
        }
    }

    /// What the events of one request share, one at a time: the buffers an event's parts are
    /// written in, kept from event to event instead of made for each.
    package final class Workspace {
        fileprivate var buffers = Buffers()

        package init() {}
    }

    /// An event's parts before they are sorted into its payload.
    fileprivate struct Buffers {
        var values: [UInt8] = [], custom: [UInt8] = [], scratch: [UInt8] = []
        /// Each user_data member's value in `values`, at its key's place in `MatchKeys.names`
        /// (the keys present are the event's `MatchKeys`): read in that order, sorted by key.
        /// Made at the first event (a workspace's buffers are swapped out while it is read).
        var userData: [Range<Int>] = []
        /// `custom_data`'s members: each name's bytes in `customNames`, its value's in `custom`.
        var customMembers: [(name: Range<Int>, range: Range<Int>)] = [], customNames: [UInt8] = []
    }

    /// The event at token `index` of `tape`, or nil for the general path.
    package static func normalize(_ tape: JSONTape, at index: Int, now: Date, workspace: Workspace = Workspace()) -> NormalizedEvent? {
        tape.withView { normalize($0, at: index, now: now, workspace: workspace) }
    }

    private static func normalize(_ tape: JSONTape.View, at index: Int, now: Date, workspace: Workspace) -> NormalizedEvent? {
        guard tape.tokens[index].kind == .object else { return nil }
        // The buffers are the workspace's again when the event is done (taken out, they are
        // written without an access check of the class's property per append).
        var buffers = workspace.buffers
        workspace.buffers = Buffers()
        defer { workspace.buffers = buffers }
        var found = SIMD8<Int>(repeating: -1)
        for (name, value) in tape.members(of: index) {
            guard let field = field(tape, name), found[field.rawValue] < 0 else { return nil }
            found[field.rawValue] = value
        }
        func at(_ field: Field) -> Int? { found[field.rawValue] >= 0 ? found[field.rawValue] : nil }
        guard let nameToken = at(.eventName), let timeToken = at(.eventTime), let sourceToken = at(.actionSource),
            let idToken = at(.eventId), let userToken = at(.userData)
        else { return nil }

        guard let name = trimmedASCII(tape, nameToken), (1...100).contains(name.count) else { return nil }
        let eventName = String(decoding: tape.span(name), as: UTF8.self)
        guard tape.tokens[sourceToken].kind == .string else { return nil }
        guard let place = actionSourceTable.place(of: sourceToken, in: tape) else { return nil }
        let source = actionSources[place]
        guard tape.tokens[timeToken].kind == .number, let time = tape.integer(timeToken) else { return nil }
        let current = now.unixSeconds
        let windowDays: Int64 = source == "physical_store" ? 62 : 7
        guard time <= 100_000_000_000, time <= current + ConversionEvent.futureToleranceSeconds,
            time >= current - windowDays * 86_400
        else { return nil }
        guard let id = trimmedASCII(tape, idToken), (1...256).contains(id.count) else { return nil }
        var url: Range<Int>?
        if let urlToken = at(.eventSourceURL) {
            guard let text = trimmedASCII(tape, urlToken), text.count <= 2048,
                ASCII.hasPrefix(tape.span(text), "http://") || ASCII.hasPrefix(tape.span(text), "https://")
            else { return nil }
            url = text
        }
        if source == "website" && url == nil { return nil }

        var out: [UInt8] = []
        out.reserveCapacity(tape.text(index).count + 800)
        out.append(literal: #"{"action_source":"#)
        JSONText.appendQuoted(source, to: &out)
        if let customToken = at(.customData) {
            out.append(literal: #","custom_data":"#)
            guard writeCustomData(tape, customToken, eventName: eventName, buffers: &buffers, into: &out) else { return nil }
        } else if eventName == "Purchase" {
            return nil
        }
        out.append(literal: #","event_id":""#)
        out.append(contentsOf: tape.span(id))
        out.append(literal: #"","event_name":""#)
        out.append(contentsOf: tape.span(name))
        out.append(UInt8(ascii: "\""))
        if let url {
            out.append(literal: #","event_source_url":""#)
            out.append(contentsOf: tape.span(url))
            out.append(UInt8(ascii: "\""))
        }
        out.append(literal: #","event_time":"#)
        out.append(decimal: time)
        out.append(literal: #","user_data":"#)
        guard
            let keys = writeUserData(
                tape, userToken, source: source, url: url, time: time,
                buffers: &buffers, into: &out)
        else { return nil }
        out.append(UInt8(ascii: "}"))
        return NormalizedEvent(
            eventId: String(decoding: tape.span(id), as: UTF8.self), eventName: eventName, eventTime: time,
            actionSource: source, payloadJSON: out, matchKeys: keys, warnings: [])
    }

    /// The action sources this path takes (all but those whose events need fields it leaves to
    /// the general path), found by their bytes: the event takes the name found (no String made
    /// from the token, none compared).
    private static let actionSources = ConversionEvent.actionSources.subtracting(["app", "business_messaging"]).sorted()
    private static let actionSourceTable = NameTable(actionSources)
    /// `ConversionEvent`'s content types and delivery categories, found by their bytes.
    private static let contentTypes = NameTable(ConversionEvent.contentTypes.sorted())
    private static let deliveryCategories = NameTable(ConversionEvent.deliveryCategories.sorted())

    /// A string token's bytes without ASCII whitespace at either end; nil when it is not a
    /// string or not ASCII (the Unicode rules are the general path's).
    private static func trimmedASCII(_ tape: JSONTape.View, _ index: Int) -> Range<Int>? {
        let token = tape.tokens[index]
        guard token.kind == .string, token.isASCII else { return nil }
        var start = Int(token.start)
        var end = Int(token.end)
        while start < end, ASCII.isWhitespace(tape.bytes[start]) { start += 1 }
        while start < end, ASCII.isWhitespace(tape.bytes[end - 1]) { end -= 1 }
        return start..<end
    }

    // MARK: user_data

    /// Names found by their bytes, each at its place in the list it was made from: made once for
    /// the process and read through pointers, so that an event's names retain and release no
    /// array.
    fileprivate final class NameTable: @unchecked Sendable {
        /// Every name's bytes, one after the other: a name's are `starts[place]..<starts[place + 1]`.
        let bytes: UnsafeBufferPointer<UInt8>
        let starts: UnsafeBufferPointer<Int>
        /// The places of the names of each length `n`: `places[lengthStarts[n]..<lengthStarts[n + 1]]`,
        /// so that a name is compared with few others.
        let places: UnsafeBufferPointer<Int>
        let lengthStarts: UnsafeBufferPointer<Int>
        /// Each name's first eight bytes as a number (`head`): most names are compared whole in
        /// one comparison.
        let heads: UnsafeBufferPointer<UInt64>

        init(_ names: [String]) {
            heads = Self.kept(names.map { name in Array(name.utf8).withUnsafeBufferPointer { Self.head($0, from: 0, count: $0.count) } })
            bytes = Self.kept(names.flatMap { Array($0.utf8) })
            starts = Self.kept(names.reduce(into: [0]) { $0.append($0.last! + $1.utf8.count) })
            let longest = names.map(\.utf8.count).max() ?? 0
            let byLength = (0...longest).map { length in names.indices.filter { names[$0].utf8.count == length } }
            places = Self.kept(byLength.flatMap { $0 })
            lengthStarts = Self.kept(byLength.reduce(into: [0]) { $0.append($0.last! + $1.count) })
        }

        /// `values` copied into memory kept for the life of the process (this table's).
        static func kept<T>(_ values: [T]) -> UnsafeBufferPointer<T> {
            let memory = UnsafeMutableBufferPointer<T>.allocate(capacity: values.count)
            _ = memory.initialize(from: values)
            return UnsafeBufferPointer(memory)
        }

        func name(_ place: Int) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: bytes[starts[place]..<starts[place + 1]]) }

        /// The place of the string at token `name` (its bytes as they are), or nil for another.
        func place(of name: Int, in tape: JSONTape.View) -> Int? {
            let token = tape.tokens[name]
            let length = Int(token.end - token.start)
            let start = Int(token.start)
            guard length + 1 < lengthStarts.count else { return nil }
            let head = Self.head(tape.bytes, from: start, count: length)
            for place in places[lengthStarts[length]..<lengthStarts[length + 1]] where heads[place] == head {
                let key = starts[place]
                var offset = 8
                while offset < length && bytes[key + offset] == tape.bytes[start + offset] { offset += 1 }
                if offset >= length { return place }
            }
            return nil
        }

        /// The first eight of the `count` bytes at `start` (fewer, the rest zero), the first lowest.
        static func head(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, count: Int) -> UInt64 {
            let taken = min(count, 8)
            guard taken > 0 else { return 0 }
            if start + 8 <= bytes.count, let base = bytes.baseAddress {
                let word = UInt64(littleEndian: UnsafeRawPointer(base + start).loadUnaligned(as: UInt64.self))
                return taken == 8 ? word : word & (UInt64.max >> (64 - taken * 8))
            }
            var word: UInt64 = 0
            for offset in 0..<taken { word |= UInt64(bytes[start + offset]) << (offset * 8) }
            return word
        }
    }

    /// The user_data keys in the order the payload lists them (sorted, `MatchKeys.names`): a key
    /// is read by finding it here, members sort by their place in this list, and that place is
    /// the key's bit in `MatchKeys`. Hashed keys have their rule.
    private final class UserDataKeys: @unchecked Sendable {
        let table: NameTable
        /// Each key as it begins its member in the payload: `"em":`.
        let members: NameTable
        let names: [String]
        let rules: UnsafeBufferPointer<UserDataRule?>
        let fbc: Int
        let userAgent: Int
        let ipAddress: Int

        init(_ names: [String]) {
            table = NameTable(names)
            members = NameTable(names.map { #""\#($0)":"# })
            self.names = names
            rules = NameTable.kept(names.map { UserDataRule(key: $0) })
            fbc = names.firstIndex(of: "fbc")!
            userAgent = names.firstIndex(of: "client_user_agent")!
            ipAddress = names.firstIndex(of: "client_ip_address")!
        }
    }

    private static let userDataKeys = UserDataKeys(MatchKeys.names)

    /// `user_data` with its keys sorted; the match keys it holds, or nil to decline.
    private static func writeUserData(
        _ tape: JSONTape.View, _ index: Int, source: String, url: Range<Int>?, time: Int64,
        buffers: inout Buffers, into out: inout [UInt8]
    ) -> MatchKeys? {
        guard tape.tokens[index].kind == .object else { return nil }
        // Each member's value is written once into `values`, its range kept at its key's place:
        // the places, read in order, are the keys sorted (the tape holds no name twice).
        buffers.values.removeAll(keepingCapacity: true)
        // Each normalized value is added after the last and hashed from where it starts: one
        // emptying an event instead of one a value.
        buffers.scratch.removeAll(keepingCapacity: true)
        var keys = MatchKeys()
        let known = userDataKeys
        if buffers.userData.isEmpty { buffers.userData = Array(repeating: 0..<0, count: known.names.count) }
        for (name, valueToken) in tape.members(of: index) {
            guard let rank = known.table.place(of: name, in: tape) else { return nil }
            let start = buffers.values.count
            if let rule = known.rules[rank] {
                guard writeHashed(tape, valueToken, key: known.names[rank], rule: rule, buffers: &buffers) else { return nil }
            } else {
                guard let text = trimmedASCII(tape, valueToken), !text.isEmpty, text.count <= 2048 else { return nil }
                if rank == known.ipAddress && !UserDataNormalizer.isIPv4(tape.span(text))
                    && !UserDataNormalizer.isIPAddress(String(decoding: tape.span(text), as: UTF8.self))
                {
                    return nil
                }
                buffers.values.append(UInt8(ascii: "\""))
                buffers.values.append(contentsOf: tape.span(text))
                buffers.values.append(UInt8(ascii: "\""))
            }
            buffers.userData[rank] = start..<buffers.values.count
            keys.insert(place: rank)
        }
        // A click id in the page's URL is the fbc Meta asks for, when none is given (the rule
        // reads the URL only when the bytes "fbclid=" are in it).
        if let url, !keys.contains(place: known.fbc), ASCII.contains(tape.span(url), "fbclid="),
            let fbclid = ConversionEvent.fbclid(in: String(decoding: tape.span(url), as: UTF8.self))
        {
            let start = buffers.values.count
            JSONText.appendQuoted("fb.1.\(time * 1000).\(fbclid)", to: &buffers.values)
            buffers.userData[known.fbc] = start..<buffers.values.count
            keys.insert(place: known.fbc)
        }
        guard !keys.isEmpty else { return nil }
        if source == "website" && !keys.contains(place: known.userAgent) { return nil }
        buffers.values.withUnsafeBufferPointer { values in
            buffers.userData.withUnsafeBufferPointer { ranges in
                // The braces, a comma between members (there is one at least), each member's
                // name and value: counted, then written in one append.
                var count = 1
                var rest = keys.bits
                while rest != 0 {
                    let rank = rest.trailingZeroBitCount
                    rest &= rest - 1
                    count += 1 + known.members.name(rank).count + ranges[rank].count
                }
                out.append(count: count) { cursor in
                    cursor.put(UInt8(ascii: "{"))
                    var rest = keys.bits
                    while rest != 0 {
                        let rank = rest.trailingZeroBitCount
                        if rest != keys.bits { cursor.put(UInt8(ascii: ",")) }
                        rest &= rest - 1
                        cursor.put(known.members.name(rank))
                        cursor.put(UnsafeBufferPointer(rebasing: values[ranges[rank]]))
                    }
                    cursor.put(UInt8(ascii: "}"))
                }
            }
        }
        return keys
    }

    /// A hashed key's value (a string, or an array of strings) normalized, hashed, de-duplicated
    /// in order, in the shape it came in, into `buffers.values`; false to decline.
    private static func writeHashed(_ tape: JSONTape.View, _ index: Int, key: String, rule: UserDataRule, buffers: inout Buffers) -> Bool {
        let isArray = tape.tokens[index].kind == .array
        let count = isArray ? Int(tape.tokens[index].count) : 1
        var item = isArray ? index + 1 : index
        var written = 0
        var first = 0
        buffers.values.append(literal: isArray ? #"[""# : #"""#)
        for _ in 0..<count {
            defer { item = Int(tape.tokens[item].next) }
            guard tape.tokens[item].kind == .string else { return false }
            let from = buffers.scratch.count
            guard normalize(tape, item, key: key, rule: rule, into: &buffers.scratch) else { return false }
            if written > 0 { buffers.values.append(literal: #"",""#) }
            let start = buffers.values.count
            if written == 0 { first = start }
            buffers.scratch.withUnsafeBufferPointer { whole in
                let scratch = UnsafeBufferPointer(rebasing: whole[from...])
                if scratch.count == 64 && scratch.allSatisfy({ ASCII.isDigit($0) || (97...102).contains($0) }) {
                    buffers.values.append(contentsOf: scratch)
                } else {
                    Crypto.appendSHA256Hex(of: UnsafeRawBufferPointer(scratch), to: &buffers.values)
                }
            }
            // De-duplicated in order: a digest already written is taken back.
            let repeated = buffers.values.withUnsafeBytes { values in
                (0..<written).contains { other in
                    let earlier = first + other * 67
                    return (0..<8).allSatisfy { word in
                        values.loadUnaligned(fromByteOffset: earlier + word * 8, as: UInt64.self)
                            == values.loadUnaligned(fromByteOffset: start + word * 8, as: UInt64.self)
                    }
                }
            }
            if repeated {
                buffers.values.removeLast(written > 0 ? 67 : 64)
            } else {
                written += 1
            }
        }
        guard written > 0 else { return false }
        buffers.values.append(literal: isArray ? #""]"# : #"""#)
        return true
    }

    /// One value by its key's `UserDataRule`, into `out`: ASCII straight from the request's
    /// bytes, other text trimmed by the Unicode rule first (`UserDataNormalizer.normalize`).
    private static func normalize(_ tape: JSONTape.View, _ index: Int, key: String, rule: UserDataRule, into out: inout [UInt8]) -> Bool {
        guard let trimmed = trimmedASCII(tape, index) else {
            // Hex digits and a dot before the text that is not ASCII: `HashedInput` decides, as below.
            let text = tape.string(index)
            guard HashedInput(Array(text.utf8)) == .plain,
                case .success(let normalized) = UserDataNormalizer.normalize(key, text)
            else { return false }
            out.append(contentsOf: normalized.utf8)
            return true
        }
        let bytes = tape.span(trimmed)
        // Hex digits and a dot (a Parameter Builder value, or text that only looks hashed):
        // the general path's `HashedInput` decides.
        if bytes.count > 32, bytes.prefix(32).allSatisfy(ASCII.isHexDigit), bytes.contains(UInt8(ascii: ".")) { return false }
        return rule.normalize(bytes, into: &out)
    }

    // MARK: custom_data

    /// How a `custom_data` key's value is written: by the general path's rule for the key, or as
    /// it was given (a key without a rule).
    fileprivate enum CustomRule {
        case value, currency, contentType, deliveryCategory, contentIds, contents, number, asGiven

        /// The snake_case names with a rule of their own.
        static let named: [(name: String, rule: CustomRule)] = [
            ("value", .value), ("currency", .currency), ("content_type", .contentType), ("delivery_category", .deliveryCategory),
            ("content_ids", .contentIds), ("contents", .contents), ("num_items", .number), ("predicted_ltv", .number),
            ("net_revenue", .number),
        ]

        init(snakeCase name: String) { self = Self.named.first { $0.name == name }?.rule ?? .asGiven }
    }

    /// The `custom_data` names with a rule or a camelCase form (`ConversionEvent.customDataKeys`),
    /// each name as it may be given at a place of its own, with the place of its snake_case form
    /// and its rule. Any other name is written as it was given, with its value as given.
    private final class CustomDataKeys: @unchecked Sendable {
        let table: NameTable
        let snakeCase: UnsafeBufferPointer<Int>
        let rules: UnsafeBufferPointer<CustomRule>

        init() {
            let snake = Array(Set(CustomRule.named.map(\.name) + ConversionEvent.customDataKeys.values)).sorted()
            let names = snake + ConversionEvent.customDataKeys.keys.sorted()
            table = NameTable(names)
            let forms = names.map { snake.firstIndex(of: ConversionEvent.customDataName($0))! }
            snakeCase = NameTable.kept(forms)
            rules = NameTable.kept(forms.map { CustomRule(snakeCase: snake[$0]) })
        }
    }

    private static let customDataKeys = CustomDataKeys()

    /// `custom_data` with its keys sorted, the general path's rules applied; false to decline.
    /// Names reach the tape in ASCII without escapes, so that their bytes are their text: written
    /// between quotes as they are, compared and sorted as bytes as Strings compare and sort.
    private static func writeCustomData(
        _ tape: JSONTape.View, _ index: Int, eventName: String, buffers: inout Buffers,
        into out: inout [UInt8]
    ) -> Bool {
        guard tape.tokens[index].kind == .object else { return false }
        // Each member's name and value are written once; the members are then sorted by name.
        var (members, names, value) = (buffers.customMembers, buffers.customNames, buffers.custom)
        (buffers.customMembers, buffers.customNames, buffers.custom) = ([], [], [])
        members.removeAll(keepingCapacity: true)
        names.removeAll(keepingCapacity: true)
        value.removeAll(keepingCapacity: true)
        defer { (buffers.customMembers, buffers.customNames, buffers.custom) = (members, names, value) }
        let known = customDataKeys
        var hasValue = false
        var hasCurrency = false
        for (nameToken, valueToken) in tape.members(of: index) {
            let place = known.table.place(of: nameToken, in: tape)
            let nameStart = names.count
            names.append(contentsOf: place.map { known.table.name(known.snakeCase[$0]) } ?? tape.text(nameToken))
            let name = nameStart..<names.count
            let rule = place.map { known.rules[$0] } ?? .asGiven
            hasValue = hasValue || rule == .value
            hasCurrency = hasCurrency || rule == .currency
            let start = value.count
            guard writeCustomValue(tape, valueToken, rule: rule, into: &value) else { return false }
            members.append((name, start..<value.count))
        }
        if eventName == "Purchase" && !(hasValue && hasCurrency) { return false }
        // Through pointers: a slice of either array would retain and release it per comparison.
        return names.withUnsafeBufferPointer { names in
            value.withUnsafeBufferPointer { value in
                func name(_ member: (name: Range<Int>, range: Range<Int>)) -> UnsafeBufferPointer<UInt8> {
                    UnsafeBufferPointer(rebasing: names[member.name])
                }
                members.sort { ASCII.precedes(name($0), name($1)) }
                // A name twice (once in camelCase, perhaps), next to itself once sorted, is the
                // general path's to refuse.
                for index in members.indices.dropFirst() where ASCII.equal(name(members[index - 1]), name(members[index])) {
                    return false
                }
                // The braces, a comma between members, each member's quoted name, a colon and
                // its value: counted, then written in one append.
                let count = members.reduce(2) { $0 + 3 + $1.name.count + $1.range.count } + max(members.count - 1, 0)
                out.append(count: count) { cursor in
                    cursor.put(UInt8(ascii: "{"))
                    for (position, member) in members.enumerated() {
                        if position > 0 { cursor.put(UInt8(ascii: ",")) }
                        cursor.put(UInt8(ascii: "\""))
                        cursor.put(name(member))
                        cursor.put(UInt8(ascii: "\""))
                        cursor.put(UInt8(ascii: ":"))
                        cursor.put(UnsafeBufferPointer(rebasing: value[member.range]))
                    }
                    cursor.put(UInt8(ascii: "}"))
                }
                return true
            }
        }
    }

    /// One `custom_data` member's value by its key's rule, into `out`; false to decline.
    private static func writeCustomValue(_ tape: JSONTape.View, _ valueToken: Int, rule: CustomRule, into out: inout [UInt8]) -> Bool {
        let token = tape.tokens[valueToken]
        switch rule {
        case .value:
            guard token.kind == .number else { return false }
            if let integer = tape.integer(valueToken) {
                guard ConversionEvent.isValue(Double(integer)) else { return false }
                out.append(decimal: integer)
                break
            }
            // At most 12 digits before the point: under 1e12, a value Meta takes.
            if let whole = tape.canonicalFraction(valueToken), whole <= 12 {
                out.append(contentsOf: tape.text(valueToken))
                break
            }
            let number = tape.number(valueToken)
            guard let double = number.number, ConversionEvent.isValue(double) else { return false }
            (number.integer.map(JSONValue.int) ?? .double(double)).write(into: &out)
        case .currency:
            guard let code = trimmedASCII(tape, valueToken) else { return false }
            out.append(UInt8(ascii: "\""))
            guard ConversionEvent.appendCurrency(tape.span(code), to: &out) else { return false }
            out.append(UInt8(ascii: "\""))
        case .contentType, .deliveryCategory:
            guard token.kind == .string, (rule == .contentType ? contentTypes : deliveryCategories).place(of: valueToken, in: tape) != nil
            else { return false }
            JSONText.appendQuoted(utf8: tape.text(valueToken), to: &out)
        case .contentIds:
            guard token.kind == .array else { return false }
            out.append(UInt8(ascii: "["))
            for (position, item) in tape.elements(of: valueToken).enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                switch tape.tokens[item].kind {
                case .string: JSONText.appendQuoted(utf8: tape.text(item), to: &out)
                case .number:
                    guard case .int(let number) = tape.number(item) else { return false }
                    JSONText.appendQuoted(String(number), to: &out)
                default: return false
                }
            }
            out.append(UInt8(ascii: "]"))
        case .contents:
            return false
        case .number:
            guard token.kind == .number else { return false }
            tape.writeNumber(valueToken, into: &out)
        case .asGiven:
            switch token.kind {
            // The tape holds strings without escapes, in valid UTF-8: quoted as they are.
            case .string: JSONText.appendQuoted(utf8: tape.text(valueToken), to: &out)
            case .number: tape.writeNumber(valueToken, into: &out)
            case .true: out.append(literal: "true")
            case .false: out.append(literal: "false")
            case .null: out.append(literal: "null")
            case .object, .array: return false
            }
        }
        return true
    }
}
