/// `Codable` read from a `JSONValue` and written straight to JSON text: the one codec of every
/// stored record and every JSON answer. A type's synthesized (or written) `Codable`
/// conformance is its only description; these read and write it as Foundation's `JSONDecoder`
/// and `JSONEncoder` would with `JSON`'s settings (ISO 8601 dates in whole seconds, sorted
/// keys, no escaped slashes), without their set-up in every short-lived process
/// (`JSONCodingTests` holds the two to the same answers).
package enum JSONCoding {
    /// `value` as `U`, which the caller found to be its type by comparing metatypes: a copy of
    /// the value, not a cast (`as!` on a generic value is a call into the run-time's casting,
    /// a hundred instructions and more a value).
    @inline(__always)
    static func same<T, U>(_ value: T, as type: U.Type) -> U {
        precondition(T.self == U.self)
        return withUnsafePointer(to: value) { UnsafeRawPointer($0).load(as: U.self) }
    }

    /// The standard integer types, found by comparing metatypes: a check for conformance to
    /// `FixedWidthInteger` on every type a value holds cost more.
    static func integerType<T>(_ type: T.Type) -> (any FixedWidthInteger.Type)? {
        switch ObjectIdentifier(type) {
        case ObjectIdentifier(Int.self): Int.self
        case ObjectIdentifier(Int64.self): Int64.self
        case ObjectIdentifier(Int8.self): Int8.self
        case ObjectIdentifier(Int16.self): Int16.self
        case ObjectIdentifier(Int32.self): Int32.self
        case ObjectIdentifier(UInt8.self): UInt8.self
        case ObjectIdentifier(UInt16.self): UInt16.self
        case ObjectIdentifier(UInt32.self): UInt32.self
        case ObjectIdentifier(UInt64.self): UInt64.self
        case ObjectIdentifier(UInt.self): UInt.self
        case ObjectIdentifier(Int128.self): Int128.self
        case ObjectIdentifier(UInt128.self): UInt128.self
        default: nil
        }
    }

    package static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try ValueDecoder.unbox(type, value, path: [])
    }

    /// `value`'s JSON text, as `JSONEncoder` writes it with `JSON`'s settings.
    package static func encode(_ value: some Encodable) throws -> [UInt8] {
        try ValueEncoder.encode(value)
    }

    /// `2026-11-28T03:26:50Z`: whole seconds, UTC (`JSONEncoder`'s `.iso8601`).
    package static func iso8601(_ date: Date) -> String {
        let time = CivilTime(unixSeconds: Int64(date.timeIntervalSince1970.rounded(.down)))
        guard (0...9999).contains(time.year) else {
            let two = CivilTime.two
            let year = String(time.year)
            return String(repeating: "0", count: max(0, 4 - year.count)) + year + "-" + two(time.month) + "-" + two(time.day)
                + "T" + two(time.hour) + ":" + two(time.minute) + ":" + two(time.second) + "Z"
        }
        // Twenty bytes written in place: every date a record holds.
        return String(unsafeUninitializedCapacity: 20) { text in
            func put(_ value: Int64, _ count: Int, at offset: Int) {
                var rest = value
                for place in (offset..<(offset + count)).reversed() {
                    text[place] = UInt8(48 + rest % 10)
                    rest /= 10
                }
            }
            put(time.year, 4, at: 0)
            put(time.month, 2, at: 5)
            put(time.day, 2, at: 8)
            put(time.hour, 2, at: 11)
            put(time.minute, 2, at: 14)
            put(time.second, 2, at: 17)
            (text[4], text[7], text[10]) = (UInt8(ascii: "-"), UInt8(ascii: "-"), UInt8(ascii: "T"))
            (text[13], text[16], text[19]) = (UInt8(ascii: ":"), UInt8(ascii: ":"), UInt8(ascii: "Z"))
            return 20
        }
    }

    /// A date as `JSONDecoder`'s `.iso8601` reads it: a valid date in the whole-second UTC form
    /// straight from its bytes, any other text (an offset, a day past the month's end) through
    /// Foundation's own ISO 8601 reader.
    package static func date(iso8601 text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 20, bytes[4] == 45, bytes[7] == 45, bytes[10] == 84, bytes[13] == 58, bytes[16] == 58, bytes[19] == 90 else {
            return try? Date(text, strategy: .iso8601)
        }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                guard ASCII.isDigit(bytes[index]) else { return nil }
                value = value * 10 + Int64(bytes[index] - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19)
        else { return try? Date(text, strategy: .iso8601) }
        let time = CivilTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        // Foundation's reader rolls a day past the month's end over into the next: so does this.
        guard time.isValid else { return try? Date(text, strategy: .iso8601) }
        return Date(timeIntervalSince1970: TimeInterval(time.unixSeconds))
    }
}

// MARK: Decoding

private struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    static func unbox<T: Decodable>(_ type: T.Type, _ value: JSONValue, path: [any CodingKey]) throws -> T {
        try unbox(type, value, parent: path, key: nil)
    }

    /// `value` as a `T`, at `key` under `parent`: the path is made only for an error or for a
    /// type that decodes itself (a value of the standard library costs no array).
    static func unbox<T: Decodable>(_ type: T.Type, _ value: JSONValue, parent: [any CodingKey], key: (any CodingKey)?) throws -> T {
        // A value of a type of the standard library that is null is missing; another type reads
        // null as it will (`Optional` as nil).
        func mismatch() -> DecodingError {
            let path = key.map { parent + [$0] } ?? parent
            guard value != .null else {
                return .valueNotFound(T.self, .init(codingPath: path, debugDescription: "Expected \(T.self), found null."))
            }
            return .typeMismatch(T.self, .init(codingPath: path, debugDescription: "Expected \(T.self), found \(value.kind)."))
        }
        // Metatypes compared, not cast: the common types first.
        if T.self == String.self {
            guard case .string(let text) = value else { throw mismatch() }
            return JSONCoding.same(text, as: T.self)
        }
        if T.self == JSONValue.self { return JSONCoding.same(value, as: T.self) }
        if T.self == Bool.self {
            guard case .bool(let flag) = value else { throw mismatch() }
            return JSONCoding.same(flag, as: T.self)
        }
        if T.self == Double.self {
            guard let number = value.number else { throw mismatch() }
            return JSONCoding.same(number, as: T.self)
        }
        if T.self == Int.self {
            guard let whole = value.integer, let number = Int(exactly: whole) else { throw mismatch() }
            return JSONCoding.same(number, as: T.self)
        }
        if T.self == Date.self {
            guard case .string(let text) = value else { throw mismatch() }
            guard let date = JSONCoding.date(iso8601: text) else {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: key.map { parent + [$0] } ?? parent, debugDescription: "Expected date string to be ISO8601-formatted."))
            }
            return JSONCoding.same(date, as: T.self)
        }
        if T.self == Float.self {
            guard let number = value.number else { throw mismatch() }
            return JSONCoding.same(Float(number), as: T.self)
        }
        if T.self == Data.self {
            guard case .string(let text) = value else { throw mismatch() }
            guard let data = Data(base64Encoded: text) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: key.map { parent + [$0] } ?? parent, debugDescription: "Encountered Data is not valid Base64."))
            }
            return JSONCoding.same(data, as: T.self)
        }
        if let integer = JSONCoding.integerType(T.self) {
            guard let whole = value.integer, let number = integer.init(exactly: whole) else { throw mismatch() }
            return number as! T
        }
        return try T(from: ValueDecoder(value: value, codingPath: key.map { parent + [$0] } ?? parent))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else {
            throw DecodingError.typeMismatch(
                [String: Any].self, .init(codingPath: codingPath, debugDescription: "Expected an object, found \(value.kind)."))
        }
        return KeyedDecodingContainer(KeyedDecoding<Key>(members: members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else {
            throw DecodingError.typeMismatch(
                [Any].self, .init(codingPath: codingPath, debugDescription: "Expected an array, found \(value.kind)."))
        }
        return UnkeyedDecoding(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleDecoding(value: value, codingPath: codingPath) }
}

private struct SingleDecoding: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { value == .null }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try ValueDecoder.unbox(type, value, path: codingPath) }
}

private struct KeyedDecoding<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }
    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func member(_ key: Key) throws -> JSONValue {
        guard let value = members[key.stringValue] else {
            throw DecodingError.keyNotFound(
                key, .init(codingPath: codingPath, debugDescription: "No value associated with key \(key.stringValue)."))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { try member(key) == .null }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try ValueDecoder.unbox(type, try member(key), parent: codingPath, key: key)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let value = members[key.stringValue], value != .null else { return nil }
        return try ValueDecoder.unbox(type, value, parent: codingPath, key: key)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(value: try member(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try ValueDecoder(value: try member(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        ValueDecoder(value: members["super"] ?? .null, codingPath: codingPath + [CodingKeyText("super")])
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        ValueDecoder(value: members[key.stringValue] ?? .null, codingPath: codingPath + [key])
    }
}

private struct UnkeyedDecoding: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(items: [JSONValue], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private var here: [any CodingKey] { codingPath + [CodingKeyText(index: currentIndex)] }

    private func next<T>(_ type: T.Type) throws -> JSONValue {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: here, debugDescription: "Unkeyed container is at end."))
        }
        return items[currentIndex]
    }

    mutating func decodeNil() throws -> Bool {
        guard try next(JSONValue.self) == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        // No key per item (it would cost a box): an error's path ends at the array.
        let value = try ValueDecoder.unbox(type, try next(type), parent: codingPath, key: nil)
        currentIndex += 1
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let container = try ValueDecoder(value: try next([String: Any].self), codingPath: here).container(keyedBy: type)
        currentIndex += 1
        return container
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let container = try ValueDecoder(value: try next([Any].self), codingPath: here).unkeyedContainer()
        currentIndex += 1
        return container
    }

    mutating func superDecoder() throws -> any Decoder {
        let decoder = ValueDecoder(value: try next(JSONValue.self), codingPath: here)
        currentIndex += 1
        return decoder
    }
}

/// A coding path's member name or array index.
private struct CodingKeyText: CodingKey {
    var stringValue: String
    var intValue: Int?

    init(_ text: String) { stringValue = text }
    init(index: Int) {
        stringValue = "Index \(index)"
        intValue = index
    }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { self.init(index: intValue) }
}

// MARK: Encoding

/// Where an encoding writes: every scalar's JSON text as it comes, one after another, and the
/// containers that hold them (`EncodedNode`), put in order only when the whole is written out.
private final class EncodingBuffer {
    /// Written only through one container's call at a time: no access overlaps another, and
    /// the run-time check of each (a twentieth of seeding's instructions) is left out.
    @exclusivity(unchecked) var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(512) }
}

/// A value in a container: a scalar's text in the buffer, or a container of its own.
private enum EncodedMember {
    case text(Range<Int>)
    case node(EncodedNode)
}

/// A value encoded through containers: an object (its members' names and values, sorted by name
/// when written out), an array, or one value (a single-value container's). The key or index it
/// sits under makes the coding path, read only for an error.
private final class EncodedNode {
    enum Kind {
        case object
        case array
        case single
    }

    enum Place {
        case top
        case key(any CodingKey)
        case index(Int)
    }

    /// An encoder that asks for no container writes `{}`, as `JSONEncoder` does.
    var kind = Kind.object
    // Changed only through one container's call at a time, as the buffer's bytes are.
    @exclusivity(unchecked) var names: [String] = []
    @exclusivity(unchecked) var members: [EncodedMember] = []
    /// Unowned: a parent holds its members, and lives while any is encoded.
    unowned let parent: EncodedNode?
    let place: Place

    init(parent: EncodedNode?, place: Place) {
        self.parent = parent
        self.place = place
    }

    var codingPath: [any CodingKey] {
        var path: [any CodingKey] = []
        var node: EncodedNode? = self
        while let current = node {
            switch current.place {
            case .top: break
            case .key(let key): path.append(key)
            case .index(let index): path.append(CodingKeyText(index: index))
            }
            node = current.parent
        }
        return path.reversed()
    }

    /// Becomes a container of `kind`, starting empty unless it already is one.
    func become(_ kind: Kind) {
        guard self.kind != kind else { return }
        self.kind = kind
        names = []
        members = []
    }

    func write(_ buffer: [UInt8], into out: inout [UInt8]) {
        switch kind {
        case .single:
            if let member = members.last { Self.write(member, buffer, into: &out) } else { out.append(literal: "null") }
        case .array:
            out.append(UInt8(ascii: "["))
            for (position, member) in members.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                Self.write(member, buffer, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object:
            out.append(UInt8(ascii: "{"))
            // Sorted by name (as `JSONValue` writes an object); of a name written twice, the
            // last value, as a dictionary keeps it.
            let order = names.indices.sorted { names[$0] < names[$1] || (names[$0] == names[$1] && $0 < $1) }
            var first = true
            for (position, member) in order.enumerated() {
                if position + 1 < order.count, names[order[position + 1]] == names[member] { continue }
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                JSONText.appendQuoted(names[member], to: &out)
                out.append(UInt8(ascii: ":"))
                Self.write(members[member], buffer, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func write(_ member: EncodedMember, _ buffer: [UInt8], into out: inout [UInt8]) {
        switch member {
        case .text(let range): buffer.withUnsafeBufferPointer { out.append(contentsOf: UnsafeBufferPointer(rebasing: $0[range])) }
        case .node(let node): node.write(buffer, into: &out)
        }
    }
}

private struct ValueEncoder: Encoder {
    let node: EncodedNode
    let buffer: EncodingBuffer
    var codingPath: [any CodingKey] { node.codingPath }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// `value`'s JSON text. The scalars of records are told by their type (a comparison of
    /// metatypes), not by a dynamic cast each.
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let buffer = EncodingBuffer()
        let member = try box(value, in: buffer, parent: nil, place: .top)
        switch member {
        case .text(let range): return Array(buffer.bytes[range])
        case .node(let node):
            var out: [UInt8] = []
            out.reserveCapacity(buffer.bytes.count + 16 * node.members.count + 16)
            node.write(buffer.bytes, into: &out)
            return out
        }
    }

    /// Writes a scalar's text into the buffer, or encodes a value through containers of a node
    /// of its own (under `parent`, at `place`).
    static func box<T: Encodable>(
        _ value: T, in buffer: EncodingBuffer, parent: EncodedNode?, place: @autoclosure () -> EncodedNode.Place
    ) throws -> EncodedMember {
        let start = buffer.bytes.count
        // Metatypes compared, not cast: the common types first.
        if T.self == String.self {
            JSONText.appendQuoted(JSONCoding.same(value, as: String.self), to: &buffer.bytes)
        } else if T.self == Date.self {
            buffer.bytes.append(UInt8(ascii: "\""))
            buffer.bytes.append(contentsOf: JSONCoding.iso8601(JSONCoding.same(value, as: Date.self)).utf8)
            buffer.bytes.append(UInt8(ascii: "\""))
        } else if T.self == Int.self {
            buffer.bytes.append(decimal: Int64(JSONCoding.same(value, as: Int.self)))
        } else if T.self == Int64.self {
            buffer.bytes.append(decimal: JSONCoding.same(value, as: Int64.self))
        } else if T.self == Bool.self {
            buffer.bytes.append(literal: JSONCoding.same(value, as: Bool.self) ? "true" : "false")
        } else if T.self == Double.self {
            try double(JSONCoding.same(value, as: Double.self), parent: parent, place: place(), into: &buffer.bytes)
        } else if T.self == JSONValue.self {
            JSONCoding.same(value, as: JSONValue.self).write(into: &buffer.bytes)
        } else if T.self == Float.self {
            try double(Double(JSONCoding.same(value, as: Float.self)), parent: parent, place: place(), into: &buffer.bytes)
        } else if T.self == Data.self {
            JSONText.appendQuoted(JSONCoding.same(value, as: Data.self).base64EncodedString(), to: &buffer.bytes)
        } else if JSONCoding.integerType(T.self) != nil, let integer = value as? any FixedWidthInteger {
            guard let number = Int64(exactly: integer) else {
                throw EncodingError.invalidValue(
                    value, .init(codingPath: path(parent, place()), debugDescription: "\(integer) is out of range."))
            }
            buffer.bytes.append(decimal: number)
        } else {
            let node = EncodedNode(parent: parent, place: place())
            try value.encode(to: ValueEncoder(node: node, buffer: buffer))
            // A value written through a single-value container is that value.
            if node.kind == .single, node.members.count == 1 { return node.members[0] }
            return .node(node)
        }
        return .text(start..<buffer.bytes.count)
    }

    /// The coding path of `place` under `parent`.
    static func path(_ parent: EncodedNode?, _ place: EncodedNode.Place) -> [any CodingKey] {
        EncodedNode(parent: parent, place: place).codingPath
    }

    /// `JSONEncoder` writes a whole double without a fraction (`100`, not `100.0`).
    private static func double(_ number: Double, parent: EncodedNode?, place: EncodedNode.Place, into out: inout [UInt8]) throws {
        guard number.isFinite else {
            throw EncodingError.invalidValue(
                number, .init(codingPath: path(parent, place), debugDescription: "\(number) is not valid JSON."))
        }
        if number.rounded() == number, abs(number) < 1e15 {
            out.append(decimal: Int64(number))
        } else {
            out.append(contentsOf: String(number).utf8)
        }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        node.become(.object)
        return KeyedEncodingContainer(KeyedEncoding<Key>(node: node, buffer: buffer))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        node.become(.array)
        return UnkeyedEncoding(node: node, buffer: buffer)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleEncoding(node: node, buffer: buffer) }
}

private struct SingleEncoding: SingleValueEncodingContainer {
    let node: EncodedNode
    let buffer: EncodingBuffer
    var codingPath: [any CodingKey] { node.codingPath }

    func encodeNil() {
        let start = buffer.bytes.count
        buffer.bytes.append(literal: "null")
        set(.text(start..<buffer.bytes.count))
    }

    func encode<T: Encodable>(_ value: T) throws {
        // The value takes this node's place: a container it makes is this node's.
        let member = try ValueEncoder.box(value, in: buffer, parent: node.parent, place: node.place)
        set(member)
    }

    private func set(_ member: EncodedMember) {
        node.become(.single)
        node.members = [member]
    }
}

private struct KeyedEncoding<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: EncodedNode
    let buffer: EncodingBuffer
    var codingPath: [any CodingKey] { node.codingPath }

    private func add(_ name: String, _ member: EncodedMember) {
        guard node.kind == .object else { return }
        node.names.append(name)
        node.members.append(member)
    }

    /// A scalar's text written into the buffer by `write`, as the member `key`.
    private func add(_ key: Key, _ write: (inout [UInt8]) throws -> Void) rethrows {
        let start = buffer.bytes.count
        try write(&buffer.bytes)
        add(key.stringValue, .text(start..<buffer.bytes.count))
    }

    // The scalars a synthesized `encode(to:)` asks for by type: no generic call, no cast.
    func encode(_ value: String, forKey key: Key) { add(key) { JSONText.appendQuoted(value, to: &$0) } }
    func encode(_ value: Bool, forKey key: Key) { add(key) { $0.append(literal: value ? "true" : "false") } }
    func encode(_ value: Int, forKey key: Key) { add(key) { $0.append(decimal: Int64(value)) } }
    func encode(_ value: Int64, forKey key: Key) { add(key) { $0.append(decimal: value) } }

    func encodeNil(forKey key: Key) {
        let start = buffer.bytes.count
        buffer.bytes.append(literal: "null")
        add(key.stringValue, .text(start..<buffer.bytes.count))
    }

    func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        add(key.stringValue, try ValueEncoder.box(value, in: buffer, parent: node, place: .key(key)))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let member = EncodedNode(parent: node, place: .key(key))
        add(key.stringValue, .node(member))
        return KeyedEncodingContainer(KeyedEncoding<NestedKey>(node: member, buffer: buffer))
    }

    func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let member = EncodedNode(parent: node, place: .key(key))
        member.kind = .array
        add(key.stringValue, .node(member))
        return UnkeyedEncoding(node: member, buffer: buffer)
    }

    func superEncoder() -> any Encoder {
        let member = EncodedNode(parent: node, place: .key(CodingKeyText("super")))
        add("super", .node(member))
        return ValueEncoder(node: member, buffer: buffer)
    }

    func superEncoder(forKey key: Key) -> any Encoder {
        let member = EncodedNode(parent: node, place: .key(key))
        add(key.stringValue, .node(member))
        return ValueEncoder(node: member, buffer: buffer)
    }
}

private struct UnkeyedEncoding: UnkeyedEncodingContainer {
    let node: EncodedNode
    let buffer: EncodingBuffer
    var codingPath: [any CodingKey] { node.codingPath }
    var count: Int { node.kind == .array ? node.members.count : 0 }

    private func append(_ item: EncodedMember) {
        guard node.kind == .array else { return }
        node.members.append(item)
    }

    func encodeNil() {
        let start = buffer.bytes.count
        buffer.bytes.append(literal: "null")
        append(.text(start..<buffer.bytes.count))
    }

    func encode<T: Encodable>(_ value: T) throws {
        append(try ValueEncoder.box(value, in: buffer, parent: node, place: .index(count)))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let item = EncodedNode(parent: node, place: .index(count))
        append(.node(item))
        return KeyedEncodingContainer(KeyedEncoding<NestedKey>(node: item, buffer: buffer))
    }

    func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let item = EncodedNode(parent: node, place: .index(count))
        item.kind = .array
        append(.node(item))
        return UnkeyedEncoding(node: item, buffer: buffer)
    }

    func superEncoder() -> any Encoder {
        let item = EncodedNode(parent: node, place: .index(count))
        append(.node(item))
        return ValueEncoder(node: item, buffer: buffer)
    }
}

extension JSONValue {
    /// What a value is, for a decoding error's message.
    fileprivate var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
